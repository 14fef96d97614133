import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { createTeam, json } from "../../../test-support/org-fixtures.js";

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
});
afterEach(async () => {
  await t.close();
});

type Entitlement = {
  feature: { key: string };
  hasAccess: boolean;
  type: string;
  config: { enabled: boolean; value?: number; unit?: string };
};

describe("billing answers", () => {
  it("reports the Free plan subscription to every member", async () => {
    const team = await createTeam(t);
    for (const user of Object.values(team.members)) {
      const res = await t.request(`/platform/organizations/${team.slug}/billing/subscription`, { token: user.token });
      expect(res.status).toBe(200);
      const sub = await json<Record<string, unknown>>(res);
      expectMatchesSchema("GetSubscriptionResponse", sub);
      expect(sub.plan).toEqual({ id: "free", name: "Free" });
      expect(sub.current_period_start as number).toBeLessThan(sub.current_period_end as number);
      // The test clock is 2026-11-25: the period is November 2026, in seconds.
      expect(sub.current_period_start).toBe(Date.UTC(2026, 10, 1) / 1000);
      expect(sub.current_period_end).toBe(Date.UTC(2026, 11, 1) / 1000);
    }
  });

  it("grants pausing, backups and audit logs and lists hosted-only features as unavailable", async () => {
    const team = await createTeam(t);
    const res = await t.request(`/platform/organizations/${team.slug}/entitlements`, {
      token: team.members.developer.token,
    });
    expect(res.status).toBe(200);
    const body = await json<{ entitlements: Entitlement[] }>(res);
    expectMatchesSchema("ListEntitlementsResponse", body);
    const byKey = new Map(body.entitlements.map((e) => [e.feature.key, e]));
    expect(byKey.size).toBe(body.entitlements.length);
    expect(byKey.get("project_pausing")).toMatchObject({ hasAccess: true, type: "boolean", config: { enabled: true } });
    for (const key of ["backup.retention_days", "security.audit_logs_days", "log.retention_days"]) {
      const e = byKey.get(key);
      expect(e, key).toMatchObject({ hasAccess: true, type: "numeric", config: { enabled: true, unit: "days" } });
      expect(e?.config.value, key).toBeGreaterThan(0);
    }
    for (const key of [
      "custom_domain",
      "ipv4",
      "pitr.available_variants",
      "project_scoped_roles",
      "auth.platform.sso",
    ]) {
      expect(byKey.get(key)?.hasAccess, key).toBe(false);
    }
  });

  it("reports no usage billing, and no figures for an organization without running projects", async () => {
    const team = await createTeam(t);
    const res = await t.request(`/platform/organizations/${team.slug}/usage`, { token: team.members.read_only.token });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ usage_billing_enabled: false, usages: [] });
  });

  it("answers Studio's daily usage call with no usage; members only; a bad window is 400", async () => {
    const team = await createTeam(t);
    const url = `/platform/organizations/${team.slug}/usage/daily`;
    const window = "?start=2026-11-01T00:00:00.000Z&end=2026-12-01T00:00:00.000Z&project_ref=abcdefghijklmnopqrst";
    const res = await t.request(`${url}${window}`, { token: team.members.read_only.token });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ usages: [] });
    expect((await t.request(`${url}?start=2026-11-01&end=2026-12-01`, { token: team.owner.token })).status).toBe(200);
    expect((await t.request(`${url}${window}`, { token: team.outsider.token })).status).toBe(404);
    const bad = await t.request(`${url}?start=yesterday&end=2026-12-01`, { token: team.owner.token });
    expect(bad.status).toBe(400);
    expect((await json<{ message: string }>(bad)).message).toMatch(/start/);
  });
});
