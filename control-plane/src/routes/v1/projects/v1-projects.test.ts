import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hosts, projects } from "../../../db/schema.js";
import { loadProjectSecrets } from "../../../services/secrets/store.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { expectMatchesOperation } from "../../../test-support/openapi.js";
import { createTeam, type TeamFixture } from "../../../test-support/org-fixtures.js";
import { createProjectViaApi } from "../../../test-support/projects-factory.js";

let t: TestApp;
let team: TeamFixture;
let ref: string;
type Role = keyof TeamFixture["members"];

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  ref = (await createProjectViaApi(t, team.members.owner, team)).ref;
});
afterAll(async () => {
  await t.close();
});

const get = (path: string, role: Role = "owner") => t.request(path, { token: team.members[role].token });
const secrets = () => loadProjectSecrets(t.deps.database.db, t.deps, ref);

interface ApiKey {
  id: string;
  name: string;
  type: string;
  api_key: string;
  prefix: string | null;
}

describe("GET /v1/projects/:ref/api-keys", () => {
  it("lists the legacy and the new keys in the Management API shape", async () => {
    const res = await get(`/v1/projects/${ref}/api-keys?reveal=true`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as ApiKey[];
    expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys", 200, body);
    const s = await secrets();
    expect(body.map((k) => [k.name, k.type, k.api_key])).toEqual([
      ["anon", "legacy", s.ANON_KEY],
      ["service_role", "legacy", s.SERVICE_ROLE_KEY],
      ["default", "publishable", s.PUBLISHABLE_KEY],
      ["default", "secret", s.SECRET_KEY],
    ]);
    for (const k of body) expect(k.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Ids are stable across reads.
    const again = (await (await get(`/v1/projects/${ref}/api-keys`)).json()) as ApiKey[];
    expect(again.map((k) => k.id)).toEqual(body.map((k) => k.id));
  });

  it("says whether the project's gateway accepts the new keys, per release (only what is true)", async () => {
    type Described = ApiKey & { description: string | null; secret_jwt_template: unknown };
    const list = async () => (await (await get(`/v1/projects/${ref}/api-keys`)).json()) as Described[];
    const byType = (keys: Described[], type: string) => keys.find((k) => k.type === type) as Described;
    // The local release's nginx gateway does not map sb_ keys.
    const local = await list();
    expect(byType(local, "publishable").description).toMatch(/not accepted by this project's gateway/);
    expect(byType(local, "secret").description).toMatch(/not accepted by this project's gateway/);
    expect(byType(local, "secret").secret_jwt_template).toBeNull();
    // The Kong release maps them (kong.ts): publishable → anon, secret → service_role.
    const db = t.deps.database.db;
    await db.update(projects).set({ release: "supabase-2026.02" }).where(eq(projects.ref, ref));
    try {
      const kong = await list();
      expect(byType(kong, "publishable").description).toBe(
        "Default publishable key: the gateway maps it to the anon role",
      );
      expect(byType(kong, "secret").description).toMatch(/maps it to the service_role role/);
      expect(byType(kong, "secret").secret_jwt_template).toEqual({ role: "service_role" });
      expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys", 200, kong);
    } finally {
      await db.update(projects).set({ release: "local" }).where(eq(projects.ref, ref));
    }
  });

  // [role, reveal, sees the legacy service_role JWT, sees the new secret key]
  const cases: [Role, string, boolean, boolean][] = [
    ["owner", "?reveal=true", true, true],
    ["administrator", "?reveal=true", true, true],
    ["developer", "?reveal=true", true, true],
    ["read_only", "?reveal=true", false, false],
    ["owner", "?reveal=false", true, false],
    ["owner", "", true, false],
    ["developer", "", true, false],
    ["read_only", "", false, false],
  ];
  it.each(cases)("%s with %j sees service_role: %s, secret key: %s", async (role, q, seesLegacy, sees) => {
    const res = await get(`/v1/projects/${ref}/api-keys${q}`, role);
    expect(res.status).toBe(200);
    const body = (await res.json()) as ApiKey[];
    expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys", 200, body);
    const s = await secrets();
    const text = JSON.stringify(body);
    // Client-side keys are always there.
    expect(text).toContain(s.ANON_KEY);
    expect(text).toContain(s.PUBLISHABLE_KEY);
    if (seesLegacy) expect(text).toContain(s.SERVICE_ROLE_KEY);
    else expect(text).not.toContain(s.SERVICE_ROLE_KEY);
    if (sees) expect(text).toContain(s.SECRET_KEY);
    else expect(text).not.toContain(s.SECRET_KEY);
    if (!sees) {
      const masked = body.find((k) => k.type === "secret") as ApiKey;
      expect(masked.api_key).toMatch(/^sb_secret_[A-Za-z0-9]{4}•+$/);
      expect(masked.prefix).toBe(masked.api_key.replace(/•+$/, ""));
    }
  });

  it.each(["yes", "1", "TRUE"])("refuses reveal=%s with a 400", async (v) => {
    const res = await get(`/v1/projects/${ref}/api-keys?reveal=${v}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/reveal/);
  });

  it("GET …/api-keys/:id answers one key with the same reveal rules", async () => {
    const list = (await (await get(`/v1/projects/${ref}/api-keys`)).json()) as ApiKey[];
    const secret = list.find((k) => k.type === "secret") as ApiKey;
    const s = await secrets();
    const owner = (await (await get(`/v1/projects/${ref}/api-keys/${secret.id}?reveal=true`)).json()) as ApiKey;
    expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys/{id}", 200, owner);
    expect(owner.api_key).toBe(s.SECRET_KEY);
    const ro = (await (
      await get(`/v1/projects/${ref}/api-keys/${secret.id}?reveal=true`, "read_only")
    ).json()) as ApiKey;
    expect(ro.api_key).not.toBe(s.SECRET_KEY);
    expect((await get(`/v1/projects/${ref}/api-keys/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await get(`/v1/projects/${ref}/api-keys/not-a-uuid`)).status).toBe(404);
  });

  it("GET …/api-keys/legacy → {enabled: true}", async () => {
    const res = await get(`/v1/projects/${ref}/api-keys/legacy`, "read_only");
    expect(res.status).toBe(200);
    const body = await res.json();
    expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys/legacy", 200, body);
    expect(body).toEqual({ enabled: true });
  });
});

describe("GET /v1/projects/:ref/health", () => {
  const db = () => t.deps.database.db;
  async function setHealth(
    health: { name: string; state: string; health: string }[] | null,
    status = "ACTIVE_HEALTHY",
  ) {
    await db()
      .update(projects)
      .set({ health, status, healthAt: new Date(t.clock.now()) })
      .where(eq(projects.ref, ref));
  }
  async function hostId(): Promise<string> {
    const [row] = await db().select().from(projects).where(eq(projects.ref, ref));
    return row?.hostId as string;
  }
  const health = async (q: string, role: Role = "owner") => {
    const res = await get(`/v1/projects/${ref}/health?${q}`, role);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json();
    expectMatchesOperation("GET", "/v1/projects/{ref}/health", 200, body);
    return body as { name: string; healthy: boolean; status: string; error?: string }[];
  };

  it("reports each requested service from the agent's last report", async () => {
    await setHealth([
      { name: "db", state: "running", health: "healthy" },
      { name: "meta", state: "running", health: "healthy" },
    ]);
    const body = await health("services=db&services=rest");
    expect(body[0]).toEqual({ name: "db", healthy: true, status: "ACTIVE_HEALTHY" });
    // The local release has no PostgREST: said so, not pretended.
    expect(body[1]).toMatchObject({ name: "rest", healthy: false, status: "UNHEALTHY" });
    expect(body[1]?.error).toMatch(/not part of this project's release/i);
  });

  it.each([
    [{ name: "db", state: "running", health: "starting" }, "COMING_UP", false],
    [{ name: "db", state: "running", health: "unhealthy" }, "UNHEALTHY", false],
    [{ name: "db", state: "exited", health: "none" }, "UNHEALTHY", false],
    [{ name: "db", state: "running", health: "none" }, "ACTIVE_HEALTHY", true],
  ])("db reported %j → %s", async (report, status, healthy) => {
    await setHealth([report]);
    const [db0] = await health("services=db,db_postgres_user", "read_only");
    expect(db0).toMatchObject({ name: "db", status, healthy });
  });

  it("before any report the services are COMING_UP", async () => {
    await setHealth(null, "COMING_UP");
    expect((await health("services=db"))[0]).toEqual({ name: "db", healthy: false, status: "COMING_UP" });
  });

  it("an offline host is never reported healthy from a stale report", async () => {
    await setHealth([{ name: "db", state: "running", health: "healthy" }]);
    const id = await hostId();
    const [before] = await db().select().from(hosts).where(eq(hosts.id, id));
    await db()
      .update(hosts)
      .set({ lastSeenAt: new Date(t.clock.now() - 3600_000) })
      .where(eq(hosts.id, id));
    try {
      const [d] = await health("services=db");
      expect(d).toMatchObject({ name: "db", healthy: false, status: "UNHEALTHY" });
      expect(d?.error).toMatch(/offline/);
    } finally {
      await db().update(hosts).set({ lastSeenAt: before?.lastSeenAt }).where(eq(hosts.id, id));
    }
  });

  it("a paused project reports its services unhealthy", async () => {
    await setHealth([{ name: "db", state: "running", health: "healthy" }], "INACTIVE");
    expect((await health("services=db"))[0]).toMatchObject({ healthy: false, error: "The project is paused" });
    await setHealth([{ name: "db", state: "running", health: "healthy" }]);
  });

  it.each([
    ["no services", ""],
    ["an unknown service", "services=db,kong"],
    ["a bad timeout", "services=db&timeout_ms=20000"],
  ])("refuses %s with a 400 for members and a 404 for outsiders", async (_name, q) => {
    const res = await get(`/v1/projects/${ref}/health?${q}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/services|timeout_ms/);
    const outsider = await t.request(`/v1/projects/${ref}/health?${q}`, { token: team.outsider.token });
    expect(outsider.status).toBe(404);
  });
});

describe("the /v1 area is authenticated and tenant-scoped", () => {
  const paths = ["api-keys", "api-keys/legacy", "health?services=db"];
  it.each(paths)("%s: outsider 404, no token 401, unknown ref 404", async (p) => {
    expect((await t.request(`/v1/projects/${ref}/${p}`, { token: team.outsider.token })).status).toBe(404);
    const anon = await t.request(`/v1/projects/${ref}/${p}`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { message: string }).message).toBeTruthy();
    expect((await get(`/v1/projects/zzzzzzzzzzzzzzzzzzzz/${p}`)).status).toBe(404);
  });

  it("an unknown /v1 path without a token is 401, with one a JSON 404", async () => {
    expect((await t.request("/v1/nothing/here")).status).toBe(401);
    const res = await get("/v1/nothing/here");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/json/);
  });
});
