/**
 * Table-driven security suite over EVERY route the app serves (read from the router, so a new
 * route is covered the day it is added):
 *  - no token, a malformed token, an expired token, a token signed with another secret → 401;
 *  - another tenant's organization or project → 404;
 *  - a role below what the route needs → 403.
 */
import { ROLE_IDS } from "@supamanager/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessTokens } from "../crypto/jwt.js";
import { signUpAndLogin, type TestUser } from "../test-support/factories.js";
import { createTestApp, TEST_JWT_SECRET, type TestApp } from "../test-support/harness.js";
import { createTeam, type TeamFixture } from "../test-support/org-fixtures.js";
import { createProjectViaApi } from "../test-support/projects-factory.js";

/** Routes anyone may call. Everything else must refuse a request without a valid session. */
const PUBLIC = new Set([
  "GET /health",
  "GET /ready",
  "GET /metrics",
  "POST /auth/v1/token",
  "POST /platform/signup",
  // Studio asks for its (empty) feature flags on the sign-in page (docs/studio-stubs.md).
  "GET /platform/telemetry/feature-flags",
  // The join token in the body is the authentication (tested in routes/agent and routes/platform/fleet).
  "POST /agent/v1/join",
]);

let t: TestApp;
let team: TeamFixture;
let ref: string;
let routes: { method: string; path: string }[];

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  ref = (await createProjectViaApi(t, team.members.owner, team)).ref;
  const seen = new Set<string>();
  routes = t.app.routes
    .filter((r) => r.method !== "ALL")
    .filter((r) => {
      const key = `${r.method} ${r.path}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .map((r) => ({ method: r.method, path: r.path }));
});
afterAll(async () => {
  await t.close();
});

function fill(path: string, owner: TestUser): string {
  return path
    .replace(":slug", team.slug)
    .replace(":ref", ref)
    .replace(":gotrue_id", owner.userId)
    .replace(":role_id", String(ROLE_IDS.developer))
    .replace(":id", "1")
    .replace(/:[a-z_]+/g, "x")
    .replace("/*", "/event");
}

/** A body that passes validation, so the answer reflects authorization, not input checking. */
function bodyFor(method: string, path: string): unknown {
  const key = `${method} ${path}`;
  const bodies: Record<string, unknown> = {
    "PATCH /platform/organizations/:slug": { name: "Renamed" },
    "POST /platform/organizations/:slug/members/invitations": {
      emails: [team.outsider.email],
      role_id: ROLE_IDS.developer,
    },
    "PATCH /platform/organizations/:slug/members/:gotrue_id": { role_id: ROLE_IDS.developer },
    "PUT /platform/organizations/:slug/members/:gotrue_id/roles/:role_id": {},
    "PATCH /platform/projects/:ref": { name: "Renamed" },
    "PATCH /platform/projects/:ref/db-password": { password: "a new password 123" },
    "POST /platform/pg-meta/:ref/query": { query: "select 1" },
    "POST /v1/projects/:ref/database/query": { query: "select 1" },
    "POST /v1/projects/:ref/database/query/read-only": { query: "select 1" },
    "POST /platform/projects": { name: "Sneaky", organization_slug: team.slug, db_pass: "a-fine-password-1" },
    "PATCH /v1/projects/:ref": { name: "Renamed" },
    "PUT /v1/projects/:ref/functions": [{ slug: "hello" }],
    "POST /platform/storage/:ref/buckets/:id/objects/move": { from: "a", to: "b" },
    "POST /platform/storage/:ref/buckets/:id/objects/copy": { from: "a", to: "b" },
    "POST /v1/projects/:ref/secrets": [{ name: "A", value: "1" }],
    "DELETE /v1/projects/:ref/secrets": ["A"],
    "POST /v1/projects": { name: "Sneaky", organization_id: team.slug, db_pass: "a-fine-password-1" },
    "POST /platform/organizations/:slug/backup-targets": {
      bucket: "sneaky-bucket",
      access_key_id: "AKIDEXAMPLE",
      secret_access_key: "not-a-real-secret",
    },
    "PATCH /platform/organizations/:slug/backup-targets/:id": { bucket: "sneaky-bucket" },
    "POST /platform/database/:ref/backups/restore": { id: 1 },
    "POST /platform/database/:ref/backups/download": { id: 1 },
    "POST /platform/projects/:ref/upgrade": { target_release: "local-17" },
    "POST /v1/projects/:ref/upgrade": { target_version: "17" },
    "POST /platform/database/:ref/backups/restore-to-new-project": {
      id: 1,
      name: "Sneaky",
      db_pass: "a-fine-password-1",
    },
    "PUT /platform/database/:ref/backups/schedule": { interval_hours: 24, retention_count: 7 },
  };
  return bodies[key] ?? (method === "GET" || method === "HEAD" || method === "DELETE" ? undefined : {});
}

async function call(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  return t.app.request(path, {
    method,
    headers: { ...headers, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

describe("authentication on every protected route", () => {
  it("the router lists the routes this suite covers", () => {
    const protectedRoutes = routes.filter((r) => !PUBLIC.has(`${r.method} ${r.path}`));
    expect(protectedRoutes.length).toBeGreaterThan(40);
    for (const p of PUBLIC) expect(routes.map((r) => `${r.method} ${r.path}`)).toContain(p);
  });

  const badTokens: [string, () => Promise<Record<string, string>>][] = [
    ["no token", async () => ({})],
    ["a malformed token", async () => ({ authorization: "Bearer not.a.jwt" })],
    ["a non-Bearer scheme", async () => ({ authorization: "Basic dXNlcjpwYXNz" })],
    // Shaped like a personal access token, but no such token exists.
    ["an unknown personal access token", async () => ({ authorization: `Bearer sbp_${"0".repeat(40)}` })],
    [
      "an expired token",
      async () => {
        const past = new AccessTokens(TEST_JWT_SECRET, 3600, () => t.clock.now() - 2 * 3600 * 1000);
        const claims = claimsOf(team.members.owner.token);
        return { authorization: `Bearer ${(await past.sign(claims)).token}` };
      },
    ],
    [
      "a token signed with another secret",
      async () => {
        const forged = new AccessTokens("another-secret-entirely-0123456789abcdef", 3600, () => t.clock.now());
        return { authorization: `Bearer ${(await forged.sign(claimsOf(team.members.owner.token))).token}` };
      },
    ],
    // Correctly signed, but claims that are not the UUIDs users and sessions are keyed by.
    ...(["session_id", "sub"] as const).map((claim): [string, () => Promise<Record<string, string>>] => [
      `a correctly signed token whose ${claim} is not a UUID`,
      async () => {
        const signer = new AccessTokens(TEST_JWT_SECRET, 3600, () => t.clock.now());
        const claims = { ...claimsOf(team.members.owner.token), [claim]: "not-a-uuid'; select 1" };
        return { authorization: `Bearer ${(await signer.sign(claims)).token}` };
      },
    ]),
  ];

  it.each(badTokens)("%s → 401 JSON on every protected route", async (_name, headersFor) => {
    const headers = await headersFor();
    const failures: string[] = [];
    for (const r of routes) {
      if (PUBLIC.has(`${r.method} ${r.path}`)) continue;
      const res = await call(r.method, fill(r.path, team.members.owner), headers, bodyFor(r.method, r.path));
      if (res.status !== 401) failures.push(`${r.method} ${r.path} → ${res.status}`);
      else if (r.method !== "HEAD") expect(((await res.json()) as { message: string }).message).toBeTruthy();
    }
    expect(failures).toEqual([]);
  });

  it("an unknown /platform path without a token is 401, not a hint that it exists", async () => {
    expect((await call("GET", "/platform/definitely/not/here", {})).status).toBe(401);
  });
});

/** Routes that carry no tenant data: constant stub answers, whatever the ref. */
const TENANT_FREE = new Set([
  "GET /platform/integrations/vercel/connections/project/:ref",
  "GET /platform/integrations/:slug", // an integration name (github, vercel), not an organization
]);

describe("tenant isolation", () => {
  it("another tenant's organization or project answers 404 on every scoped route", async () => {
    const outsider = { authorization: `Bearer ${team.outsider.token}` };
    const scoped = routes.filter(
      (r) => (r.path.includes(":slug") || r.path.includes(":ref")) && !TENANT_FREE.has(`${r.method} ${r.path}`),
    );
    expect(scoped.length).toBeGreaterThan(20);
    const failures: string[] = [];
    for (const r of scoped) {
      const res = await call(r.method, fill(r.path, team.members.owner), outsider, bodyFor(r.method, r.path));
      if (res.status !== 404) failures.push(`${r.method} ${r.path} → ${res.status}`);
    }
    expect(failures).toEqual([]);
  });

  it("creating a project in another tenant's organization answers 404", async () => {
    const res = await call(
      "POST",
      "/platform/projects",
      { authorization: `Bearer ${team.outsider.token}` },
      bodyFor("POST", "/platform/projects"),
    );
    expect(res.status).toBe(404);
  });

  it("lists never include another tenant's rows", async () => {
    const outsider = { authorization: `Bearer ${team.outsider.token}` };
    const orgs = (await (await call("GET", "/platform/organizations", outsider)).json()) as { slug: string }[];
    expect(orgs.map((o) => o.slug)).not.toContain(team.slug);
    const projects = (await (await call("GET", "/platform/projects", outsider)).json()) as {
      projects: { ref: string }[];
    };
    expect(projects.projects.map((p) => p.ref)).not.toContain(ref);
    const perms = (await (await call("GET", "/platform/profile/permissions", outsider)).json()) as {
      organization_slug: string;
    }[];
    expect(perms.map((p) => p.organization_slug)).not.toContain(team.slug);
  });
});

/**
 * Mutations a role may not perform. The target member is always the owner, so "leave the
 * organization" (which any member may do for themselves) is not what is being tested.
 */
const FORBIDDEN: Record<"read_only" | "developer", string[]> = {
  read_only: [
    "PATCH /platform/organizations/:slug",
    "DELETE /platform/organizations/:slug",
    "POST /platform/organizations/:slug/members/invitations",
    "DELETE /platform/organizations/:slug/members/invitations/:id",
    "PATCH /platform/organizations/:slug/members/:gotrue_id",
    "DELETE /platform/organizations/:slug/members/:gotrue_id",
    "PUT /platform/organizations/:slug/members/:gotrue_id/roles/:role_id",
    "DELETE /platform/organizations/:slug/members/:gotrue_id/roles/:role_id",
    "POST /platform/projects",
    "PATCH /platform/projects/:ref",
    "DELETE /platform/projects/:ref",
    "POST /platform/projects/:ref/pause",
    "POST /platform/projects/:ref/restore",
    "POST /platform/projects/:ref/restart",
    "POST /platform/projects/:ref/restart-services",
    "PATCH /platform/projects/:ref/db-password",
    // Mints a service-role key: only roles that may read secrets.
    "POST /platform/projects/:ref/api-keys/temporary",
    "POST /v1/projects",
    "PATCH /v1/projects/:ref",
    "DELETE /v1/projects/:ref",
    "POST /v1/projects/:ref/pause",
    "POST /v1/projects/:ref/restore",
    "POST /v1/projects/:ref/restart",
    // Backups: taking and downloading need backups.manage, the rest backups.admin.
    "POST /platform/database/:ref/backups",
    "POST /platform/database/:ref/backups/download",
    "POST /platform/organizations/:slug/backup-targets",
    "PATCH /platform/organizations/:slug/backup-targets/:id",
    "DELETE /platform/organizations/:slug/backup-targets/:id",
    "POST /platform/organizations/:slug/backup-targets/:id/test",
    "POST /platform/database/:ref/backups/restore",
    "POST /platform/database/:ref/backups/restore-to-new-project",
    "POST /platform/projects/:ref/upgrade",
    "POST /v1/projects/:ref/upgrade",
    "PUT /platform/database/:ref/backups/schedule",
    // Auth settings are project settings (projects.update).
    "PATCH /platform/auth/:ref/config",
    "PATCH /v1/projects/:ref/config/auth",
    // Auth users are the project's data: whoever may write it (sql.write) manages them.
    "POST /platform/auth/:ref/users",
    "PATCH /platform/auth/:ref/users/:id",
    "DELETE /platform/auth/:ref/users/:id",
    "DELETE /platform/auth/:ref/users/:id/factors",
    "POST /platform/auth/:ref/invite",
    "POST /platform/auth/:ref/recover",
    "POST /platform/auth/:ref/magiclink",
    "POST /platform/auth/:ref/otp",
    // Storage buckets and objects are the project's data too.
    "POST /platform/storage/:ref/buckets",
    "PATCH /platform/storage/:ref/buckets/:id",
    "DELETE /platform/storage/:ref/buckets/:id",
    "POST /platform/storage/:ref/buckets/:id/empty",
    "DELETE /platform/storage/:ref/buckets/:id/objects",
    "POST /platform/storage/:ref/buckets/:id/objects/move",
    "POST /platform/storage/:ref/buckets/:id/objects/copy",
    "POST /platform/storage/:ref/credentials",
    "DELETE /platform/storage/:ref/credentials/:id",
    "PATCH /platform/projects/:ref/config/storage",
    // Realtime settings are project settings (projects.update).
    "PATCH /platform/projects/:ref/config/realtime",
    "PATCH /v1/projects/:ref/config/realtime",
    // So are the Data API (PostgREST) settings, Auth hooks and e-mail templates.
    "PATCH /platform/projects/:ref/config/postgrest",
    "PATCH /platform/auth/:ref/config/hooks",
    "POST /platform/auth/:ref/templates/:template/reset",
    // Edge Functions and their secrets: developer and up.
    "POST /v1/projects/:ref/functions/deploy",
    "PUT /v1/projects/:ref/functions",
    "POST /v1/projects/:ref/functions",
    "PATCH /v1/projects/:ref/functions/:slug",
    "DELETE /v1/projects/:ref/functions/:slug",
    "POST /v1/projects/:ref/secrets",
    "DELETE /v1/projects/:ref/secrets",
  ],
  developer: [
    "PATCH /platform/organizations/:slug",
    "DELETE /platform/organizations/:slug",
    "POST /platform/organizations/:slug/members/invitations",
    "DELETE /platform/organizations/:slug/members/invitations/:id",
    "PATCH /platform/organizations/:slug/members/:gotrue_id",
    "DELETE /platform/organizations/:slug/members/:gotrue_id",
    "PUT /platform/organizations/:slug/members/:gotrue_id/roles/:role_id",
    "DELETE /platform/organizations/:slug/members/:gotrue_id/roles/:role_id",
    "POST /platform/projects",
    "DELETE /platform/projects/:ref",
    "POST /platform/projects/:ref/pause",
    "POST /platform/projects/:ref/restore",
    "PATCH /platform/projects/:ref/db-password",
    "POST /v1/projects",
    "PATCH /v1/projects/:ref",
    "DELETE /v1/projects/:ref",
    "POST /v1/projects/:ref/pause",
    "POST /v1/projects/:ref/restore",
    "PATCH /platform/auth/:ref/config",
    "PATCH /v1/projects/:ref/config/auth",
    "PATCH /platform/projects/:ref/config/storage",
    "PATCH /platform/projects/:ref/config/realtime",
    "PATCH /v1/projects/:ref/config/realtime",
    "PATCH /platform/projects/:ref/config/postgrest",
    "PATCH /platform/auth/:ref/config/hooks",
    "POST /platform/auth/:ref/templates/:template/reset",
    // Restores, schedules and the storage target are backups.admin (owner/administrator).
    "POST /platform/organizations/:slug/backup-targets",
    "PATCH /platform/organizations/:slug/backup-targets/:id",
    "DELETE /platform/organizations/:slug/backup-targets/:id",
    "POST /platform/organizations/:slug/backup-targets/:id/test",
    "POST /platform/database/:ref/backups/restore",
    "POST /platform/database/:ref/backups/restore-to-new-project",
    "POST /platform/projects/:ref/upgrade",
    "POST /v1/projects/:ref/upgrade",
    "PUT /platform/database/:ref/backups/schedule",
  ],
};

describe("roles", () => {
  it("every mutating route scoped to an organization or project is in a role table or allowed to all", () => {
    const mutating = routes
      .filter((r) => r.method !== "GET" && r.method !== "HEAD")
      .filter(
        (r) =>
          r.path.includes(":slug") ||
          r.path.includes(":ref") ||
          r.path === "/platform/projects" ||
          r.path === "/v1/projects",
      )
      .map((r) => `${r.method} ${r.path}`)
      .filter((k) => !TENANT_FREE.has(k));
    // Mutations every member may perform (listed so a new route must be placed).
    const openToMembers = new Set([
      // Accepting an invitation: any signed-in account; the token and the invited address decide
      // (routes/platform/organizations/invitations.test.ts).
      "POST /platform/organizations/:slug/members/invitations/:token",
      // SQL: every member may run it; read_only members run it as a read-only database role, so
      // PostgreSQL refuses their writes (services/pg-meta/, test/data-plane/).
      "POST /platform/pg-meta/:ref/query",
      "POST /v1/projects/:ref/database/query",
      "POST /v1/projects/:ref/database/query/read-only",
      // Saved content: every member keeps private snippets and folders; who may touch which row is
      // decided per row (services/content/rules.ts, tested in routes/platform/projects/content/).
      "PUT /platform/projects/:ref/content",
      "DELETE /platform/projects/:ref/content",
      "POST /platform/projects/:ref/content/folders",
      "DELETE /platform/projects/:ref/content/folders",
      "PATCH /platform/projects/:ref/content/folders/:id",
      // Reads that Studio sends as POST: the Postgres versions a new project gets, and the (empty)
      // ban list of a project.
      "POST /platform/organizations/:slug/available-versions",
      "POST /v1/projects/:ref/network-bans/retrieve",
      // The log explorer's query, sent as POST: a read of the project's container logs.
      "POST /platform/projects/:ref/analytics/endpoints/logs.all",
      // Listing a bucket's objects, sent as POST.
      "POST /platform/storage/:ref/buckets/:id/objects/list",
      // Reading an object, and the signed and public URLs of one, sent as POST.
      "POST /platform/storage/:ref/buckets/:id/objects/download",
      "POST /platform/storage/:ref/buckets/:id/objects/sign",
      "POST /platform/storage/:ref/buckets/:id/objects/public-url",
    ]);
    const unplaced = mutating.filter((k) => !FORBIDDEN.read_only.includes(k) && !openToMembers.has(k));
    expect(unplaced).toEqual([]);
  });

  it.each(["read_only", "developer"] as const)("%s gets 403 on the mutations its role does not allow", async (role) => {
    const headers = { authorization: `Bearer ${team.members[role].token}` };
    const failures: string[] = [];
    for (const key of FORBIDDEN[role]) {
      const [method, path] = key.split(" ") as [string, string];
      const res = await call(method, fill(path, team.members.owner), headers, bodyFor(method, path));
      if (res.status !== 403) failures.push(`${key} → ${res.status} ${await res.text()}`);
    }
    expect(failures).toEqual([]);
  });

  it("a role check does not leak existence: a non-member gets 404 where a member gets 403", async () => {
    const member = await call("DELETE", `/platform/projects/${ref}`, {
      authorization: `Bearer ${team.members.read_only.token}`,
    });
    const stranger = await call("DELETE", `/platform/projects/${ref}`, {
      authorization: `Bearer ${team.outsider.token}`,
    });
    expect([member.status, stranger.status]).toEqual([403, 404]);
  });
});

describe("fleet routes", () => {
  it("are for the instance admin only: every other account gets 403 on each of them", async () => {
    const fleet = routes.filter((r) => r.path.startsWith("/platform/fleet"));
    expect(fleet.length).toBeGreaterThanOrEqual(7);
    const failures: string[] = [];
    for (const user of [team.members.administrator, team.members.developer, team.outsider]) {
      for (const r of fleet) {
        const body =
          r.method === "POST" && r.path.endsWith("join-tokens") ? { region: "eu-1" } : bodyFor(r.method, r.path);
        const res = await call(
          r.method,
          fill(r.path, team.members.owner),
          { authorization: `Bearer ${user.token}` },
          body,
        );
        if (res.status !== 403) failures.push(`${r.method} ${r.path} → ${res.status}`);
      }
    }
    expect(failures).toEqual([]);
  });
});

describe("responses never carry secrets", () => {
  it("no password hash, encrypted value or db_pass appears in any GET answer", async () => {
    const owner = { authorization: `Bearer ${team.members.owner.token}` };
    const user = await signUpAndLogin(t);
    expect(user.userId).toBeTruthy();
    for (const r of routes.filter((x) => x.method === "GET" && !PUBLIC.has(`GET ${x.path}`))) {
      const res = await call("GET", fill(r.path, team.members.owner), owner);
      const text = await res.text();
      expect(text, r.path).not.toMatch(/\$scrypt\$|password_hash|passwordHash|db_pass|v1\.[0-9a-f]{8}\./);
    }
  });
});

function claimsOf(token: string) {
  const payload = JSON.parse(Buffer.from(token.split(".")[1] as string, "base64url").toString()) as Record<
    string,
    string
  >;
  return {
    sub: payload.sub as string,
    email: payload.email as string,
    session_id: payload.session_id as string,
    aal: "aal1" as const,
    role: "authenticated" as const,
  };
}
