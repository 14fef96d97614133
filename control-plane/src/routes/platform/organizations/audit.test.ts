import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog } from "../../../db/schema.js";
import { signUpAndLogin } from "../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { type AuditItem, createOrg, createTeam, json } from "../../../test-support/org-fixtures.js";

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
});
afterEach(async () => {
  await t.close();
});

type Page = { result: (AuditItem & { request_id: string })[]; retention_period: number };

async function audit(slug: string, token: string, qs = ""): Promise<Response> {
  return t.request(`/platform/organizations/${slug}/audit${qs}`, { token });
}

async function insertRow(orgId: number | null, action: string, at: string) {
  await t.deps.database.db
    .insert(auditLog)
    .values({ orgId, action, outcome: "success", requestId: `req-${action}`, createdAt: new Date(at) });
}

describe("GET /platform/organizations/:slug/audit", () => {
  it("returns only this organization's rows, newest first, in Studio's shape", async () => {
    const team = await createTeam(t);
    await t.request(`/platform/organizations/${team.slug}`, {
      method: "PATCH",
      token: team.owner.token,
      json: { name: "Renamed" },
    });
    const res = await audit(team.slug, team.members.read_only.token);
    expect(res.status).toBe(200);
    const page = await json<Page>(res);
    expect(page.retention_period).toBeGreaterThan(0);
    expect(page.result.map((r) => r.action.name)).toEqual([
      "org.update",
      // Each member of the team was invited, then joined with their own session.
      "member.join",
      "member.invite",
      "member.join",
      "member.invite",
      "member.join",
      "member.invite",
      "org.create",
    ]);
    const [latest] = page.result;
    expect(latest).toMatchObject({
      organization_slug: team.slug,
      // What Studio's audit page reads: occurred_at, action.metadata[0], actor.id/metadata[0], target.
      occurred_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      action: {
        name: "org.update",
        status: 200,
        method: "",
        route: "",
        metadata: [{ status: 200, outcome: "success" }],
      },
      actor: {
        id: team.owner.userId,
        type: "user",
        metadata: [{ email: team.owner.email }],
        token_type: "user",
        user_id: team.owner.userId,
        email: team.owner.email,
      },
      target: { metadata: { org_slug: team.slug } },
    });
    expect(new Date((latest as unknown as { occurred_at: string }).occurred_at).getTime() * 1000).toBe(
      latest?.timestamp,
    );
    expect(typeof latest?.request_id).toBe("string");
    // Microseconds since the epoch.
    expect(latest?.timestamp).toBeGreaterThan(Date.UTC(2020, 0, 1) * 1000);
    const stamps = page.result.map((r) => r.timestamp);
    expect([...stamps].sort((a, b) => b - a)).toEqual(stamps);
    // Sign-ins and the other organization's creation are not this organization's business.
    const names = new Set(page.result.map((r) => r.action.name));
    for (const foreign of ["auth.login", "account.signup", "profile.create"]) expect(names.has(foreign)).toBe(false);
    expect(page.result.every((r) => r.actor.user_id !== team.outsider.userId)).toBe(true);
  });

  it("filters by iso_timestamp_start/end and honours limit", async () => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    await insertRow(org.id, "old.thing", "2020-01-01T00:00:00Z");
    await insertRow(org.id, "mid.thing", "2021-06-01T00:00:00Z");
    await insertRow(null, "signin.thing", "2021-06-01T00:00:00Z");
    const window = "?iso_timestamp_start=2021-01-01T00:00:00.000Z&iso_timestamp_end=2021-12-31T00:00:00Z";
    const page = await json<Page>(await audit(org.slug, owner.token, window));
    expect(page.result.map((r) => r.action.name)).toEqual(["mid.thing"]);
    const since = await json<Page>(await audit(org.slug, owner.token, "?iso_timestamp_start=2021-01-01T00:00:00Z"));
    expect(since.result.map((r) => r.action.name)).toEqual(["org.create", "mid.thing"]);
    const limited = await json<Page>(await audit(org.slug, owner.token, "?limit=1"));
    expect(limited.result.map((r) => r.action.name)).toEqual(["org.create"]);
  });

  it.each([
    ["bad start", "?iso_timestamp_start=yesterday"],
    ["bad end", "?iso_timestamp_end=2021-13-45"],
    ["start after end", "?iso_timestamp_start=2022-01-01T00:00:00Z&iso_timestamp_end=2021-01-01T00:00:00Z"],
    ["zero limit", "?limit=0"],
    ["limit too large", "?limit=100000"],
  ])("rejects %s with 400", async (_name, qs) => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    const res = await audit(org.slug, owner.token, qs);
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(/iso_timestamp|limit/);
  });

  it("is readable by every role (audit.read) and by no outsider", async () => {
    const team = await createTeam(t);
    for (const user of Object.values(team.members)) expect((await audit(team.slug, user.token)).status).toBe(200);
    expect((await audit(team.slug, team.outsider.token)).status).toBe(404);
  });
});

describe("GET /platform/profile/audit", () => {
  it("returns the caller's own rows across organizations, in the same shape, and nobody else's", async () => {
    const team = await createTeam(t);
    await t.request(`/platform/organizations/${team.slug}`, {
      method: "PATCH",
      token: team.owner.token,
      json: { name: "Renamed" },
    });
    const res = await t.request("/platform/profile/audit?iso_timestamp_start=2020-01-01T00:00:00Z", {
      token: team.owner.token,
    });
    expect(res.status).toBe(200);
    const page = await json<Page>(res);
    expect(page.retention_period).toBeGreaterThan(0);
    expect(page.result.length).toBeGreaterThan(0);
    expect(page.result.every((r) => r.actor.user_id === team.owner.userId)).toBe(true);
    const update = page.result.find((r) => r.action.name === "org.update");
    expect(update).toMatchObject({ organization_slug: team.slug, actor: { id: team.owner.userId } });
    // Another member's account page shows none of the owner's rows.
    const other = await json<Page>(await t.request("/platform/profile/audit", { token: team.outsider.token }));
    expect(other.result.some((r) => r.actor.user_id === team.owner.userId)).toBe(false);
    expect((await t.request("/platform/profile/audit")).status).toBe(401);
    expect(
      (await t.request("/platform/profile/audit?iso_timestamp_start=nope", { token: team.owner.token })).status,
    ).toBe(400);
  });
});
