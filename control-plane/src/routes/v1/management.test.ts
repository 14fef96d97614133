import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLog, projects } from "../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { ensureHost } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { expectMatchesOperation } from "../../test-support/openapi.js";
import { createTeam, type TeamFixture } from "../../test-support/org-fixtures.js";
import { createProjectViaApi, TEST_DB_PASS } from "../../test-support/projects-factory.js";

/**
 * Management API v1: organizations and projects, against Supabase's OpenAPI document. The
 * callers authenticate with personal access tokens, as the CLIs do.
 */

let t: TestApp;
let team: TeamFixture;
let ref: string;
type Role = keyof TeamFixture["members"];
const pats = {} as Record<Role | "outsider", string>;

async function patFor(user: TestUser): Promise<string> {
  const res = await t.request("/platform/profile/access-tokens", {
    method: "POST",
    token: user.token,
    json: { name: "cli" },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  ref = (await createProjectViaApi(t, team.members.owner, team, { name: "Alpha" })).ref;
  for (const role of ["owner", "administrator", "developer", "read_only"] as const) {
    pats[role] = await patFor(team.members[role]);
  }
  pats.outsider = await patFor(team.outsider);
});
afterAll(async () => {
  await t.close();
});

const call = (method: string, path: string, who: Role | "outsider" = "owner", json?: unknown) =>
  t.request(path, { method, token: pats[who], ...(json !== undefined ? { json } : {}) });

async function setStatus(r: string, status: string) {
  await t.deps.database.db.update(projects).set({ status }).where(eq(projects.ref, r));
}

async function audits(action: string, r: string) {
  return t.deps.database.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.action, action), eq(auditLog.projectRef, r)));
}

describe("GET /v1/organizations", () => {
  it("lists the caller's organizations only, in the document's shape", async () => {
    const res = await call("GET", "/v1/organizations", "developer");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string; slug: string; name: string }[];
    expectMatchesOperation("GET", "/v1/organizations", 200, body);
    expect(body).toEqual([{ id: team.slug, slug: team.slug, name: "Acme" }]);
    const outsider = (await (await call("GET", "/v1/organizations", "outsider")).json()) as { slug: string }[];
    expect(outsider.map((o) => o.slug)).not.toContain(team.slug);
  });
});

describe("POST /v1/organizations", () => {
  it("creates an organization owned by the caller", async () => {
    const res = await call("POST", "/v1/organizations", "developer", { name: "  Side Project  " });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { slug: string; name: string };
    expectMatchesOperation("POST", "/v1/organizations", 201, body);
    expect(body.name).toBe("Side Project");
    const members = (await (await call("GET", `/v1/organizations/${body.slug}/members`, "developer")).json()) as {
      email: string;
      role_name: string;
    }[];
    expect(members).toEqual([expect.objectContaining({ email: team.members.developer.email, role_name: "Owner" })]);
    // Nobody else sees it.
    expect((await call("GET", `/v1/organizations/${body.slug}`, "owner")).status).toBe(404);
  });

  it.each([
    ["no name", {}],
    ["an empty name", { name: " " }],
    ["a name that is not a string", { name: 7 }],
    ["an unknown field", { name: "x", tier: "tier_pro" }],
  ])("rejects %s with 400", async (_case, json) => {
    expect((await call("POST", "/v1/organizations", "owner", json)).status).toBe(400);
  });
});

describe("GET /v1/organizations/:slug, /members, /projects", () => {
  it("answers the organization", async () => {
    const res = await call("GET", `/v1/organizations/${team.slug}`, "read_only");
    expect(res.status).toBe(200);
    const body = await res.json();
    expectMatchesOperation("GET", "/v1/organizations/{slug}", 200, body);
    expect(body).toMatchObject({ id: team.slug, name: "Acme", plan: "free" });
  });

  it("lists the members with their role names", async () => {
    const res = await call("GET", `/v1/organizations/${team.slug}/members`, "read_only");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { user_id: string; email: string; role_name: string }[];
    expectMatchesOperation("GET", "/v1/organizations/{slug}/members", 200, body);
    expect(Object.fromEntries(body.map((m) => [m.email, m.role_name]))).toEqual({
      [team.members.owner.email]: "Owner",
      [team.members.administrator.email]: "Administrator",
      [team.members.developer.email]: "Developer",
      [team.members.read_only.email]: "Read-only",
    });
    expect(body.find((m) => m.email === team.members.owner.email)?.user_id).toBe(team.members.owner.userId);
  });

  it("lists the organization's projects, paginated", async () => {
    const res = await call("GET", `/v1/organizations/${team.slug}/projects?limit=10`, "read_only");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { projects: { ref: string }[]; pagination: { limit: number } };
    expectMatchesOperation("GET", "/v1/organizations/{slug}/projects", 200, body);
    expect(body.projects.map((p) => p.ref)).toContain(ref);
    expect(body.pagination.limit).toBe(10);
    expect((await call("GET", `/v1/organizations/${team.slug}/projects?limit=0`)).status).toBe(400);
  });

  it.each([[`/v1/organizations/${"x"}`], ["/v1/organizations/SLUG"]])(
    "an unknown or malformed slug (%s) is 404",
    async (path) => {
      expect((await call("GET", path)).status).toBe(404);
    },
  );

  it.each(["", "/members", "/projects"])("another tenant's organization%s is 404", async (suffix) => {
    expect((await call("GET", `/v1/organizations/${team.slug}${suffix}`, "outsider")).status).toBe(404);
  });
});

describe("GET /v1/projects and /v1/projects/:ref", () => {
  it("lists the caller's projects with their database", async () => {
    const res = await call("GET", "/v1/projects", "read_only");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ref: string; organization_slug: string; database: { version: string } }[];
    expectMatchesOperation("GET", "/v1/projects", 200, body);
    const mine = body.find((p) => p.ref === ref);
    expect(mine).toMatchObject({ id: ref, organization_id: team.slug, organization_slug: team.slug, name: "Alpha" });
    expect(mine?.database.version).toMatch(/^15\./);
    const outsider = (await (await call("GET", "/v1/projects", "outsider")).json()) as { ref: string }[];
    expect(outsider.map((p) => p.ref)).not.toContain(ref);
  });

  it("answers one project", async () => {
    const res = await call("GET", `/v1/projects/${ref}`, "developer");
    expect(res.status).toBe(200);
    const body = await res.json();
    expectMatchesOperation("GET", "/v1/projects/{ref}", 200, body);
    expect(body).toMatchObject({ ref, region: "local", status: "COMING_UP" });
    expect(JSON.stringify(body)).not.toMatch(/db_pass|s3cret/);
  });

  it("another tenant's project and a malformed ref are 404", async () => {
    expect((await call("GET", `/v1/projects/${ref}`, "outsider")).status).toBe(404);
    expect((await call("GET", "/v1/projects/NOT-A-REF")).status).toBe(404);
  });
});

describe("POST /v1/projects", () => {
  const body = (extra: Record<string, unknown> = {}) => ({
    name: "From the CLI",
    db_pass: TEST_DB_PASS,
    region: "local",
    ...extra,
  });

  it("creates a project from the official CLI's body (organization_id = slug, region, plan)", async () => {
    const res = await call("POST", "/v1/projects", "owner", body({ organization_id: team.slug, plan: "free" }));
    expect(res.status, await res.clone().text()).toBe(201);
    const created = (await res.json()) as { ref: string; status: string; organization_slug: string };
    expectMatchesOperation("POST", "/v1/projects", 201, created);
    expect(created).toMatchObject({ status: "COMING_UP", organization_slug: team.slug, region: "local" });
    expect(JSON.stringify(created)).not.toContain(TEST_DB_PASS);
    expect(await audits("project.create", created.ref)).toHaveLength(1);
  });

  it("creates a project from the document's body (organization_slug, region_selection)", async () => {
    await ensureHost(t, "eu-central-1");
    const res = await call(
      "POST",
      "/v1/projects",
      "administrator",
      body({
        organization_slug: team.slug,
        region: undefined,
        region_selection: { type: "specific", code: "eu-central-1" },
      }),
    );
    expect(res.status, await res.clone().text()).toBe(201);
    expect(((await res.json()) as { region: string }).region).toBe("eu-central-1");
  });

  it.each([
    ["no organization", () => body()],
    ["two different organizations", () => body({ organization_slug: team.slug, organization_id: "other-org" })],
    ["a short db_pass", () => body({ organization_id: team.slug, db_pass: "short" })],
    ["no name", () => body({ organization_id: team.slug, name: undefined })],
    ["an unknown region", () => body({ organization_id: team.slug, region: "mars-1" })],
    [
      "region and region_selection",
      () => body({ organization_id: team.slug, region_selection: { type: "specific", code: "local" } }),
    ],
    ["an unknown size", () => body({ organization_id: team.slug, desired_instance_size: "48xlarge" })],
    ["another postgres engine", () => body({ organization_id: team.slug, postgres_engine: "17" })],
  ])("rejects %s with 400", async (_case, json) => {
    const res = await call("POST", "/v1/projects", "owner", json());
    expect(res.status, await res.clone().text()).toBe(400);
  });

  it("needs a role that may create projects (403) and membership (404)", async () => {
    for (const role of ["developer", "read_only"] as const) {
      expect((await call("POST", "/v1/projects", role, body({ organization_id: team.slug }))).status).toBe(403);
    }
    expect((await call("POST", "/v1/projects", "outsider", body({ organization_id: team.slug }))).status).toBe(404);
  });
});

describe("PATCH and DELETE /v1/projects/:ref", () => {
  it("renames a project", async () => {
    const res = await call("PATCH", `/v1/projects/${ref}`, "administrator", { name: "Alpha Prime" });
    expect(res.status).toBe(200);
    const body = await res.json();
    expectMatchesOperation("PATCH", "/v1/projects/{ref}", 200, body);
    expect(body).toMatchObject({ ref, name: "Alpha Prime" });
    expect((await call("PATCH", `/v1/projects/${ref}`, "owner", { name: "" })).status).toBe(400);
    expect((await call("PATCH", `/v1/projects/${ref}`, "owner", {})).status).toBe(400);
    expect((await call("PATCH", `/v1/projects/${ref}`, "developer", { name: "x" })).status).toBe(403);
    expect((await call("PATCH", `/v1/projects/${ref}`, "read_only", { name: "x" })).status).toBe(403);
    expect((await call("PATCH", `/v1/projects/${ref}`, "outsider", { name: "x" })).status).toBe(404);
  });

  it("deletes a project (owner/administrator only) and audits it", async () => {
    const doomed = (await createProjectViaApi(t, team.members.owner, team, { name: "Doomed" })).ref;
    expect((await call("DELETE", `/v1/projects/${doomed}`, "developer")).status).toBe(403);
    expect((await call("DELETE", `/v1/projects/${doomed}`, "outsider")).status).toBe(404);
    const res = await call("DELETE", `/v1/projects/${doomed}`, "administrator");
    expect(res.status).toBe(200);
    const body = await res.json();
    expectMatchesOperation("DELETE", "/v1/projects/{ref}", 200, body);
    expect(body).toMatchObject({ ref: doomed, name: "Doomed" });
    expect(await audits("project.delete", doomed)).toHaveLength(1);
    const after = (await (await call("GET", `/v1/projects/${doomed}`)).json()) as { status: string };
    expect(after.status).toBe("GOING_DOWN");
  });
});

describe("pause, restore, restart", () => {
  it("moves the project through its lifecycle and audits each request", async () => {
    const r = (await createProjectViaApi(t, team.members.owner, team, { name: "Cycle" })).ref;
    await setStatus(r, "ACTIVE_HEALTHY");
    const restart = await call("POST", `/v1/projects/${r}/restart`, "developer");
    expect(restart.status).toBe(200);
    expect(((await restart.json()) as { status: string }).status).toBe("RESTARTING");
    await setStatus(r, "ACTIVE_HEALTHY");
    const pause = await call("POST", `/v1/projects/${r}/pause`, "owner");
    expect(pause.status).toBe(200);
    expect(((await pause.json()) as { status: string }).status).toBe("PAUSING");
    // Already pausing: a conflict, not a second request.
    expect((await call("POST", `/v1/projects/${r}/pause`, "owner")).status).toBe(409);
    await setStatus(r, "INACTIVE");
    const restore = await call("POST", `/v1/projects/${r}/restore`, "owner");
    expect(restore.status).toBe(200);
    expect(((await restore.json()) as { status: string }).status).toBe("RESTORING");
    for (const action of ["project.restart", "project.pause", "project.restore"]) {
      expect(await audits(action, r), action).toHaveLength(1);
    }
  });

  // [request, role, expected status] — the same matrix as /platform (pause/restore: admin and up).
  const cases: [string, Role | "outsider", number][] = [
    ["pause", "developer", 403],
    ["pause", "read_only", 403],
    ["restore", "developer", 403],
    ["restart", "read_only", 403],
    ["pause", "outsider", 404],
    ["restore", "outsider", 404],
    ["restart", "outsider", 404],
  ];
  it.each(cases)("%s as %s → %i", async (request, who, status) => {
    await setStatus(ref, request === "restore" ? "INACTIVE" : "ACTIVE_HEALTHY");
    expect((await call("POST", `/v1/projects/${ref}/${request}`, who)).status).toBe(status);
  });
});

describe("GET /v1/projects/available-regions", () => {
  it("lists the regions of enrolled hosts", async () => {
    const fresh = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
    try {
      const owner = await signUpAndLogin(fresh);
      await ensureHost(fresh, "eu-central-1");
      const res = await fresh.request("/v1/projects/available-regions", { token: owner.token });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { all: { specific: { code: string }[] } };
      expectMatchesOperation("GET", "/v1/projects/available-regions", 200, body);
      expect(body.all.specific.map((s) => s.code)).toEqual(["eu-central-1"]);
    } finally {
      await fresh.close();
    }
  });
});

describe("authentication", () => {
  it.each([
    ["GET", "/v1/organizations"],
    ["POST", "/v1/organizations"],
    ["GET", "/v1/projects"],
    ["POST", "/v1/projects"],
  ])("%s %s without a token → 401", async (method, path) => {
    expect((await t.request(path, { method })).status).toBe(401);
  });

  it("a revoked PAT → 401 on /v1", async () => {
    const created = await t.request("/platform/profile/access-tokens", {
      method: "POST",
      token: team.members.owner.token,
      json: { name: "temp" },
    });
    const { id, token } = (await created.json()) as { id: string; token: string };
    expect((await t.request("/v1/organizations", { token })).status).toBe(200);
    await t.request(`/platform/profile/access-tokens/${id}`, { method: "DELETE", token: team.members.owner.token });
    expect((await t.request("/v1/organizations", { token })).status).toBe(401);
  });
});
