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

/**
 * The Stripe-backed billing pages (apps/studio/data/organizations/organization-customer-profile-query.ts,
 * organization-payment-methods-query.ts and organization-tax-id-query.ts with `Version: 2`,
 * data/invoices/invoices-query.ts `?offset&limit` and invoices-count-query.ts `HEAD`, which reads
 * `X-Total-Count`): named stubs in platform.d.ts' shapes (CustomerResponse, PaymentsResponse,
 * TaxIdResponse, an invoice list), since nothing is billed.
 */
describe("Stripe-backed billing pages: named stubs", () => {
  it("every member gets the empty answers in Studio's shapes", async () => {
    const team = await createTeam(t);
    for (const user of Object.values(team.members)) {
      const get = (path: string, headers: Record<string, string> = {}) =>
        t.request(`/platform/organizations/${team.slug}${path}`, { token: user.token, headers });
      const customer = await get("/customer");
      expect(customer.status).toBe(200);
      const c = await json<Record<string, unknown>>(customer);
      expect(c).toEqual({ email: expect.any(String), additional_emails: [], balance: 0, billing_via_partner: false });
      const payments = await get("/payments", { Version: "2" });
      expect(payments.status).toBe(200);
      expect(await payments.json()).toEqual({ data: [], defaultPaymentMethodId: null });
      const tax = await get("/tax-ids", { Version: "2" });
      expect(tax.status).toBe(200);
      expect(await tax.json()).toEqual({ tax_id: null });
      const list = await get("/billing/invoices?offset=0&limit=10");
      expect(list.status).toBe(200);
      expect(await list.json()).toEqual([]);
      expect(list.headers.get("x-total-count")).toBe("0");
    }
  });

  it("HEAD …/billing/invoices answers the count in X-Total-Count, readable by Studio's origin (CORS)", async () => {
    const team = await createTeam(t);
    const origin = t.deps.config.corsOrigins[0] as string;
    const res = await t.request(`/platform/organizations/${team.slug}/billing/invoices`, {
      method: "HEAD",
      token: team.members.read_only.token,
      headers: { origin },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-total-count")).toBe("0");
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("x-total-count");
  });

  it("the customer's e-mail is the organization's billing e-mail", async () => {
    const team = await createTeam(t);
    const org = await json<{ billing_email: string | null }>(
      await t.request(`/platform/organizations/${team.slug}`, { token: team.members.owner.token }),
    );
    const c = await json<{ email: string }>(
      await t.request(`/platform/organizations/${team.slug}/customer`, { token: team.members.owner.token }),
    );
    expect(c.email).toBe(org.billing_email ?? "");
  });

  it("bad paging is 400; another organization's member 404; no session 401", async () => {
    const team = await createTeam(t);
    const bad = await t.request(`/platform/organizations/${team.slug}/billing/invoices?limit=0`, {
      token: team.members.owner.token,
    });
    expect(bad.status).toBe(400);
    for (const path of ["/customer", "/payments", "/billing/invoices", "/tax-ids"]) {
      const other = await t.request(`/platform/organizations/${team.slug}${path}`, { token: team.outsider.token });
      expect(other.status, path).toBe(404);
      expect((await t.request(`/platform/organizations/${team.slug}${path}`)).status, path).toBe(401);
    }
  });
});
