import { newProjectRef } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { organizations, projects } from "../../../db/schema.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { signUpAndLogin } from "../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { auditActions, createOrg, createTeam, json } from "../../../test-support/org-fixtures.js";

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
});
afterEach(async () => {
  await t.close();
});

type Org = Record<string, unknown> & { id: number; slug: string; name: string };

async function insertProject(orgId: number, status: string) {
  await t.deps.database.db.insert(projects).values({
    ref: newProjectRef(),
    orgId,
    name: `p-${status}`,
    region: "eu-1",
    status,
    dbPassEncrypted: "not-a-real-ciphertext",
  });
}

describe("POST /platform/organizations", () => {
  it("creates the organization with the caller as owner, in Studio's shape", async () => {
    const u = await signUpAndLogin(t);
    const res = await t.request("/platform/organizations", {
      method: "POST",
      token: u.token,
      json: { name: "  Acme Corp ", tier: "tier_pro", kind: "COMPANY", size: "1-10" },
    });
    expect(res.status).toBe(201);
    const org = await json<Org>(res);
    expectMatchesSchema("CreateOrganizationResponse", org);
    expectMatchesSchema("OrganizationResponse", org);
    expect(org).toMatchObject({
      name: "Acme Corp",
      plan: { id: "free", name: "Free" },
      billing_email: u.email,
      is_owner: true,
      opt_in_tags: [],
      organization_requires_mfa: false,
      restriction_status: null,
      restriction_data: null,
      billing_partner: null,
      organization_missing_address: false,
      stripe_customer_id: null,
      subscription_id: null,
      usage_billing_enabled: false,
    });
    expect(typeof org.id).toBe("number");
    expect(org.slug).toMatch(/^[a-z0-9]{20}$/);

    // Studio caches the object at once: the list and the permissions must already include it.
    const list = await json<Org[]>(await t.request("/platform/organizations", { token: u.token }));
    expect(list).toEqual([org]);
    const perms = await json<{ organization_slug: string }[]>(
      await t.request("/platform/profile/permissions", { token: u.token }),
    );
    expect(perms.map((p) => p.organization_slug)).toContain(org.slug);
    const members = await json<{ gotrue_id: string; role_ids: number[] }[]>(
      await t.request(`/platform/organizations/${org.slug}/members`, { token: u.token }),
    );
    expect(members).toEqual([expect.objectContaining({ gotrue_id: u.userId, role_ids: [1] })]);
    expect((await auditActions(t, org.slug, u.token)).map((a) => a.action.name)).toEqual(["org.create"]);
  });

  it.each([
    ["missing name", { tier: "tier_free" }],
    ["empty name", { name: "   ", tier: "tier_free" }],
    ["name too long", { name: "x".repeat(101), tier: "tier_free" }],
    ["name not a string", { name: 42, tier: "tier_free" }],
    ["control characters", { name: "a\u0000b", tier: "tier_free" }],
    ["missing tier", { name: "Acme" }],
    ["unknown tier", { name: "Acme", tier: "tier_gold" }],
    ["kind not a string", { name: "Acme", tier: "tier_free", kind: 7 }],
  ])("rejects %s with 400", async (_name, body) => {
    const u = await signUpAndLogin(t);
    const res = await t.request("/platform/organizations", { method: "POST", token: u.token, json: body });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(/body\./);
    expect(await json<Org[]>(await t.request("/platform/organizations", { token: u.token }))).toEqual([]);
  });

  it("rejects malformed JSON and requires a session", async () => {
    const u = await signUpAndLogin(t);
    const bad = await t.request("/platform/organizations", {
      method: "POST",
      token: u.token,
      body: "{nope",
      headers: { "content-type": "application/json" },
    });
    expect(bad.status).toBe(400);
    const anon = await t.request("/platform/organizations", { method: "POST", json: { name: "x", tier: "tier_free" } });
    expect(anon.status).toBe(401);
    expect((await t.request("/platform/organizations")).status).toBe(401);
  });
});

describe("GET /platform/organizations", () => {
  it("lists only the caller's organizations, with is_owner per membership", async () => {
    const team = await createTeam(t);
    const dev = team.members.developer;
    const list = await json<Org[]>(await t.request("/platform/organizations", { token: dev.token }));
    expect(list.map((o) => o.slug)).toEqual([team.slug]);
    expect(list[0]?.is_owner).toBe(false);
    for (const o of list) expectMatchesSchema("OrganizationResponse", o);
    const own = await json<Org[]>(await t.request("/platform/organizations", { token: team.outsider.token }));
    expect(own.map((o) => o.slug)).not.toContain(team.slug);
    expect(own).toHaveLength(1);
  });
});

describe("GET /platform/organizations/:slug", () => {
  it("answers OrganizationSlugResponse for every member", async () => {
    const team = await createTeam(t);
    for (const user of Object.values(team.members)) {
      const res = await t.request(`/platform/organizations/${team.slug}`, { token: user.token });
      expect(res.status).toBe(200);
      const org = await json<Org>(res);
      expectMatchesSchema("OrganizationSlugResponse", org);
      expect(org).toMatchObject({ slug: team.slug, id: team.id, has_oriole_project: false, plan: { id: "free" } });
    }
  });

  it.each([["unknown-slug-000"], ["NOT_A_SLUG!"], ["x"]])("answers 404 for %s", async (slug) => {
    const u = await signUpAndLogin(t);
    const res = await t.request(`/platform/organizations/${encodeURIComponent(slug)}`, { token: u.token });
    expect(res.status).toBe(404);
  });
});

describe("PATCH /platform/organizations/:slug", () => {
  it.each(["owner", "administrator"] as const)("lets the %s rename it and set the billing email", async (role) => {
    const team = await createTeam(t);
    const res = await t.request(`/platform/organizations/${team.slug}`, {
      method: "PATCH",
      token: team.members[role].token,
      json: { name: "Renamed", billing_email: "billing@example.test", opt_in_tags: [] },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const org = await json<Org>(res);
    expectMatchesSchema("OrganizationResponse", org);
    expect(org).toMatchObject({ name: "Renamed", billing_email: "billing@example.test", is_owner: role === "owner" });
    const again = await json<Org>(await t.request(`/platform/organizations/${team.slug}`, { token: team.owner.token }));
    expect(again.name).toBe("Renamed");
    const audit = await auditActions(t, team.slug, team.owner.token);
    expect(audit[0]?.action.name).toBe("org.update");
    expect(audit[0]?.actor.user_id).toBe(team.members[role].userId);
  });

  it.each(["developer", "read_only"] as const)("refuses the %s with 403", async (role) => {
    const team = await createTeam(t);
    const res = await t.request(`/platform/organizations/${team.slug}`, {
      method: "PATCH",
      token: team.members[role].token,
      json: { name: "Hijacked" },
    });
    expect(res.status).toBe(403);
    const org = await json<Org>(await t.request(`/platform/organizations/${team.slug}`, { token: team.owner.token }));
    expect(org.name).toBe("Acme");
  });

  it.each([
    ["empty name", { name: "" }],
    ["bad billing email", { billing_email: "not-an-email" }],
    ["opt-in tags we cannot honour", { opt_in_tags: ["AI_SQL_GENERATOR_OPT_IN"] }],
    ["opt_in_tags not an array", { opt_in_tags: "x" }],
  ])("rejects %s with 400", async (_name, body) => {
    const u = await signUpAndLogin(t);
    const org = await createOrg(t, u);
    const res = await t.request(`/platform/organizations/${org.slug}`, { method: "PATCH", token: u.token, json: body });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message.length).toBeGreaterThan(0);
  });

  it("clears the billing email with null", async () => {
    const u = await signUpAndLogin(t);
    const org = await createOrg(t, u);
    const res = await t.request(`/platform/organizations/${org.slug}`, {
      method: "PATCH",
      token: u.token,
      json: { billing_email: null },
    });
    expect((await json<Org>(res)).billing_email).toBeNull();
  });
});

describe("DELETE /platform/organizations/:slug", () => {
  it("lets the owner delete it; it disappears for every member", async () => {
    const team = await createTeam(t);
    const res = await t.request(`/platform/organizations/${team.slug}`, { method: "DELETE", token: team.owner.token });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ id: team.id, slug: team.slug });
    for (const user of Object.values(team.members)) {
      expect((await t.request(`/platform/organizations/${team.slug}`, { token: user.token })).status).toBe(404);
      const list = await json<Org[]>(await t.request("/platform/organizations", { token: user.token }));
      expect(list.map((o) => o.slug)).not.toContain(team.slug);
    }
  });

  it.each(["administrator", "developer", "read_only"] as const)("refuses the %s with 403", async (role) => {
    const team = await createTeam(t);
    const res = await t.request(`/platform/organizations/${team.slug}`, {
      method: "DELETE",
      token: team.members[role].token,
    });
    expect(res.status).toBe(403);
    expect((await t.request(`/platform/organizations/${team.slug}`, { token: team.owner.token })).status).toBe(200);
  });

  it("refuses with 409 while a live project remains, and ignores REMOVED ones", async () => {
    const u = await signUpAndLogin(t);
    const org = await createOrg(t, u);
    await insertProject(org.id, "REMOVED");
    await insertProject(org.id, "ACTIVE_HEALTHY");
    const res = await t.request(`/platform/organizations/${org.slug}`, { method: "DELETE", token: u.token });
    expect(res.status).toBe(409);
    expect((await json<{ message: string }>(res)).message).toMatch(/1 project/);
    await t.deps.database.db.update(projects).set({ status: "REMOVED" }).where(eq(projects.orgId, org.id));
    const ok = await t.request(`/platform/organizations/${org.slug}`, { method: "DELETE", token: u.token });
    expect(ok.status).toBe(200);
    const left = await t.deps.database.db.select().from(organizations).where(eq(organizations.id, org.id));
    expect(left).toEqual([]);
  });
});

describe("tenant isolation", () => {
  const routes: [string, string, unknown?][] = [
    ["GET", ""],
    ["PATCH", "", { name: "x" }],
    ["DELETE", ""],
    ["GET", "/members"],
    ["GET", "/roles"],
    ["GET", "/members/invitations"],
    ["POST", "/members/invitations", { emails: ["someone@example.test"], role_id: 3 }],
    ["DELETE", "/members/invitations/1"],
    ["PATCH", "/members/MEMBER", { role_id: 3 }],
    ["PUT", "/members/MEMBER/roles/3", {}],
    ["DELETE", "/members/MEMBER/roles/1"],
    ["DELETE", "/members/MEMBER"],
    ["GET", "/members/reached-free-project-limit"],
    ["GET", "/members/mfa/enforcement"],
    ["GET", "/audit"],
    ["GET", "/billing/subscription"],
    ["GET", "/entitlements"],
    ["GET", "/usage"],
  ];

  it("answers 404 on every organization route to a non-member, and 401 without a token", async () => {
    const team = await createTeam(t);
    for (const [method, suffix, body] of routes) {
      const path = `/platform/organizations/${team.slug}${suffix.replace("MEMBER", team.owner.userId)}`;
      const res = await t.request(path, {
        method,
        token: team.outsider.token,
        ...(body !== undefined ? { json: body } : {}),
      });
      expect(res.status, `${method} ${suffix}`).toBe(404);
      expect((await json<{ message: string }>(res)).message, `${method} ${suffix}`).toMatch(/not found/i);
      const anon = await t.request(path, { method, ...(body !== undefined ? { json: body } : {}) });
      expect(anon.status, `${method} ${suffix} anonymous`).toBe(401);
    }
    // Nothing changed: the owner is still the owner and the org still has its name.
    const org = await json<Org>(await t.request(`/platform/organizations/${team.slug}`, { token: team.owner.token }));
    expect(org.name).toBe("Acme");
    const audit = await auditActions(t, team.slug, team.owner.token);
    expect(audit.every((a) => a.actor.user_id !== team.outsider.userId)).toBe(true);
  });
});
