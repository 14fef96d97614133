import { eq } from "drizzle-orm";
import { decodeJwt, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLog, hosts, portReservations, projects } from "../../../db/schema.js";
import { connectionToken, resolveConnectionToken } from "../../../services/secrets/connection-token.js";
import { loadProjectSecrets } from "../../../services/secrets/store.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { createTeam, type TeamFixture } from "../../../test-support/org-fixtures.js";
import { createProjectViaApi, TEST_DB_PASS } from "../../../test-support/projects-factory.js";

let t: TestApp;
let team: TeamFixture;
let ref: string;
let endpoint: string;
const utf8 = new TextEncoder();
type Role = keyof TeamFixture["members"];
interface Settings {
  app_config: { endpoint: string; protocol: string };
  db_host: string;
  db_port: number;
  [key: string]: unknown;
}
type Fields = Record<string, string | number | boolean | null>;
const ROLES: Role[] = ["owner", "administrator", "developer", "read_only"];

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  const created = await createProjectViaApi(t, team.members.owner, team);
  ref = created.ref;
  endpoint = created.endpoint as string;
});
afterAll(async () => {
  await t.close();
});

const get = (path: string, role: Role = "owner") => t.request(path, { token: team.members[role].token });
const secrets = () => loadProjectSecrets(t.deps.database.db, t.deps, ref);

/** The project's reserved host port named `name` (reservations are stored as `<service>:<port name>`). */
async function reservedPort(name: string): Promise<number> {
  const rows = await t.deps.database.db.select().from(portReservations).where(eq(portReservations.projectRef, ref));
  return rows.find((r) => r.service.endsWith(`:${name}`))?.port as number;
}
const gatewayPort = () => reservedPort("gateway");

describe("GET /platform/projects/:ref/settings", () => {
  it("answers ProjectSettingsResponse whose project URL is the project's gateway", async () => {
    const res = await get(`/platform/projects/${ref}/settings`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Settings;
    expectMatchesSchema("ProjectSettingsResponse", body);
    const port = await gatewayPort();
    expect(port).toBeGreaterThan(0);
    expect(`${body.app_config.protocol}://${body.app_config.endpoint}`).toBe(`http://127.0.0.1:${port}`);
    expect(body.app_config.endpoint).toBe(endpoint);
    expect(body).toMatchObject({ ref, db_host: "127.0.0.1", db_user: "postgres", db_name: "postgres" });
    expect(body.db_port).toBe(await reservedPort("db"));
    expect(body.db_port).not.toBe(port);
    expect(JSON.stringify(body)).not.toContain(TEST_DB_PASS);
  });

  it.each([
    ["owner", true],
    ["administrator", true],
    ["developer", true],
    ["read_only", false],
  ] as const)("%s sees the legacy keys: %s", async (role, sees) => {
    const body = (await (await get(`/platform/projects/${ref}/settings`, role)).json()) as {
      service_api_keys: { name: string; tags: string; api_key: string }[];
    };
    const s = await secrets();
    if (sees) {
      expect(body.service_api_keys).toEqual([
        { name: "anon key", tags: "anon", api_key: s.ANON_KEY },
        { name: "service_role key", tags: "service_role", api_key: s.SERVICE_ROLE_KEY },
      ]);
    } else {
      expect(body.service_api_keys).toEqual([]);
      expect(JSON.stringify(body)).not.toContain(s.SERVICE_ROLE_KEY);
    }
  });

  it("after the host moves its bind address, the URL follows it", async () => {
    const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    const setBind = (bindAddress: string) =>
      t.deps.database.db
        .update(hosts)
        .set({ bindAddress })
        .where(eq(hosts.id, row?.hostId as string));
    await setBind("10.1.2.3");
    try {
      const body = (await (await get(`/platform/projects/${ref}/settings`)).json()) as Settings;
      expect(body.app_config.endpoint).toBe(`10.1.2.3:${await gatewayPort()}`);
      expect(body.db_host).toBe("10.1.2.3");
    } finally {
      await setBind("127.0.0.1");
    }
  });
});

describe("GET /platform/projects/:ref/config/postgrest", () => {
  it.each([
    ["owner", true],
    ["administrator", true],
    ["developer", false],
    ["read_only", false],
  ] as const)("%s gets the JWT secret: %s", async (role, sees) => {
    const res = await get(`/platform/projects/${ref}/config/postgrest`, role);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    const s = await secrets();
    expect(body).toMatchObject({ db_schema: expect.stringContaining("public"), db_anon_role: "anon", max_rows: 1000 });
    if (sees) {
      expectMatchesSchema("GetPostgrestConfigResponse", body);
      expect(body.jwt_secret).toBe(s.JWT_SECRET);
    } else {
      expect(body).not.toHaveProperty("jwt_secret");
      expect(JSON.stringify(body)).not.toContain(s.JWT_SECRET);
    }
  });
});

describe("GET /platform/projects/:ref/databases and the connection token", () => {
  it("answers DatabaseDetailResponse[] with an opaque connectionString that maps back to the project", async () => {
    const res = await get(`/platform/projects/${ref}/databases`, "read_only");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Fields[];
    expect(body).toHaveLength(1);
    const d = body[0] as Fields;
    expectMatchesSchema("DatabaseDetailResponse", d);
    expect(d).toMatchObject({ identifier: ref, db_host: "127.0.0.1", db_user: "postgres", status: "COMING_UP" });
    expect(d.restUrl).toBe(`http://${endpoint}/rest/v1/`);
    expect(d.connectionString).toMatch(/^cs1_/);
    expect(d.connectionString).not.toContain(TEST_DB_PASS);
    expect(await resolveConnectionToken({ deps: t.deps }, d.connectionString as string)).toBe(ref);
    const detail = (await (await get(`/platform/projects/${ref}`)).json()) as { connectionString: string };
    expect(detail.connectionString).toBe(d.connectionString);
  });

  it.each([
    ["garbage", "not-a-token"],
    ["a tampered mac", async () => (await connectionToken(t.deps, ref)).replace(/.$/, (c) => (c === "0" ? "1" : "0"))],
    [
      "another ref with this ref's mac",
      async () => (await connectionToken(t.deps, ref)).replace(ref, "zzzzzzzzzzzzzzzzzzzz"),
    ],
    ["an empty string", ""],
  ])("resolveConnectionToken refuses %s", async (_name, token) => {
    const value = typeof token === "function" ? await token() : token;
    expect(await resolveConnectionToken({ deps: t.deps }, value)).toBeUndefined();
  });
});

describe("pooler configuration", () => {
  it("config/supavisor is empty for a release without a pooler", async () => {
    const res = await get(`/platform/projects/${ref}/config/supavisor`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([]);
  });

  it("config/supavisor describes the transaction pooler when the release runs Supavisor", async () => {
    const db = t.deps.database.db;
    const [row] = await db.select().from(projects).where(eq(projects.ref, ref));
    if (!row) throw new Error("no project");
    const production = t.deps.releases.names().find((n) => t.deps.releases.get(n)?.services.supavisor);
    if (!production) throw new Error("no release with supavisor");
    await db.update(projects).set({ release: production }).where(eq(projects.ref, ref));
    await db
      .insert(portReservations)
      .values({ hostId: row.hostId as string, port: 39999, projectRef: ref, service: "supavisor:pooler-transaction" });
    try {
      const res = await get(`/platform/projects/${ref}/config/supavisor`, "read_only");
      expect(res.status).toBe(200);
      const body = (await res.json()) as Fields[];
      expect(body).toHaveLength(1);
      expectMatchesSchema("SupavisorConfigResponse", body[0]);
      expect(body[0]).toMatchObject({
        identifier: ref,
        db_port: 39999,
        db_user: `postgres.${ref}`,
        pool_mode: "transaction",
      });
      expect(body[0]?.connection_string).toBe(`postgresql://postgres.${ref}:[YOUR-PASSWORD]@127.0.0.1:39999/postgres`);
    } finally {
      await db.delete(portReservations).where(eq(portReservations.port, 39999));
      await db.update(projects).set({ release: row.release }).where(eq(projects.ref, ref));
    }
  });

  it("config/pgbouncer says PgBouncer is off and gives direct connection facts without a password", async () => {
    const res = await get(`/platform/projects/${ref}/config/pgbouncer`, "read_only");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Fields;
    expectMatchesSchema("PgbouncerConfigResponse", body);
    expect(body.pgbouncer_enabled).toBe(false);
    expect(body.connection_string).toMatch(/^postgresql:\/\/postgres:\[YOUR-PASSWORD\]@127\.0\.0\.1:\d+\/postgres$/);
  });
});

describe("POST /platform/projects/:ref/api-keys/temporary", () => {
  it.each(["owner", "administrator", "developer"] as const)(
    "%s gets a service-role JWT that expires within the hour, audited",
    async (role) => {
      const res = await t.request(`/platform/projects/${ref}/api-keys/temporary`, {
        method: "POST",
        token: team.members[role].token,
      });
      expect(res.status).toBe(200);
      const { api_key } = (await res.json()) as { api_key: string };
      const { payload } = await jwtVerify(api_key, utf8.encode((await secrets()).JWT_SECRET), {
        currentDate: new Date(t.clock.now()),
      });
      expect(payload).toMatchObject({ role: "service_role", ref, iss: "supabase" });
      expect((payload.exp as number) - (payload.iat as number)).toBe(3600);
      const audits = await t.deps.database.db
        .select()
        .from(auditLog)
        .where(eq(auditLog.action, "project.api_key.temporary"));
      expect(audits.some((a) => a.actorId === team.members[role].userId && a.projectRef === ref)).toBe(true);
      expect(JSON.stringify(audits)).not.toContain(api_key);
    },
  );

  it("honours a shorter authorization_exp", async () => {
    const res = await t.request(`/platform/projects/${ref}/api-keys/temporary?authorization_exp=60`, {
      method: "POST",
      token: team.members.owner.token,
    });
    const payload = decodeJwt(((await res.json()) as { api_key: string }).api_key);
    expect((payload.exp as number) - (payload.iat as number)).toBe(60);
  });

  it.each(["0", "3601", "abc", "-5"])("refuses authorization_exp=%s with a 400", async (v) => {
    const res = await t.request(`/platform/projects/${ref}/api-keys/temporary?authorization_exp=${v}`, {
      method: "POST",
      token: team.members.owner.token,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/authorization_exp/);
  });

  it("is refused to read_only (403) and to non-members (404)", async () => {
    const ro = await t.request(`/platform/projects/${ref}/api-keys/temporary`, {
      method: "POST",
      token: team.members.read_only.token,
    });
    expect(ro.status).toBe(403);
    const outsider = await t.request(`/platform/projects/${ref}/api-keys/temporary`, {
      method: "POST",
      token: team.outsider.token,
    });
    expect(outsider.status).toBe(404);
  });
});

describe("every data endpoint is tenant-scoped", () => {
  const paths = ["settings", "config/postgrest", "config/supavisor", "config/pgbouncer", "databases"];
  it.each(paths)("%s: any member 200, outsider 404, no token 401, unknown ref 404", async (p) => {
    for (const role of ROLES) expect((await get(`/platform/projects/${ref}/${p}`, role)).status).toBe(200);
    expect((await t.request(`/platform/projects/${ref}/${p}`, { token: team.outsider.token })).status).toBe(404);
    expect((await t.request(`/platform/projects/${ref}/${p}`)).status).toBe(401);
    expect((await get(`/platform/projects/zzzzzzzzzzzzzzzzzzzz/${p}`)).status).toBe(404);
    expect((await get(`/platform/projects/NOT-A-REF/${p}`)).status).toBe(404);
  });
});
