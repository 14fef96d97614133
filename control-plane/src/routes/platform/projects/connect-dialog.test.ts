import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hosts, portReservations, projects } from "../../../db/schema.js";
import { V08_RELEASE_NAME } from "../../../releases/supabase-v08/index.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { expectMatchesOperation } from "../../../test-support/openapi.js";
import { createTeam, type TeamFixture } from "../../../test-support/org-fixtures.js";
import { createProjectViaApi, TEST_DB_PASS } from "../../../test-support/projects-factory.js";

/**
 * Studio's Connect dialog (Connect.tsx, DatabaseConnectionString.tsx, February 2026): every call
 * it makes, as it makes them, on a project of the default release (which runs Supavisor), and the
 * connection strings Studio builds from the answers — they must name the project's host and the
 * ports reserved for it in our records.
 */
let t: TestApp;
let team: TeamFixture;
let ref: string;
let localRef: string;

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  ref = (await createProjectViaApi(t, team.members.owner, team, { release: V08_RELEASE_NAME })).ref;
  localRef = (await createProjectViaApi(t, team.members.owner, team, { release: "local" })).ref;
  // The dialog's button is enabled for ACTIVE_HEALTHY projects only; no agent runs here.
  await t.deps.database.db.update(projects).set({ status: "ACTIVE_HEALTHY" });
});
afterAll(async () => {
  await t.close();
});

const get = async <T>(path: string, role: keyof TeamFixture["members"] = "developer") => {
  const res = await t.request(path, { token: team.members[role].token });
  expect(res.status, `${path}: ${await res.clone().text()}`).toBe(200);
  return (await res.json()) as T;
};

/** What our records say: the host's address and the ports reserved for the project. */
async function records(projectRef: string) {
  const db = t.deps.database.db;
  const [row] = await db
    .select({ address: hosts.bindAddress })
    .from(projects)
    .innerJoin(hosts, eq(hosts.id, projects.hostId))
    .where(eq(projects.ref, projectRef));
  const ports = await db.select().from(portReservations).where(eq(portReservations.projectRef, projectRef));
  const port = (name: string) => ports.find((p) => p.service.endsWith(`:${name}`))?.port;
  return {
    address: row?.address as string,
    db: port("db"),
    session: port("pooler-session"),
    pooler: port("pooler-transaction"),
  };
}

interface Database {
  identifier: string;
  db_host: string;
  db_port: number;
  db_name: string;
  db_user: string;
}
interface Pooler extends Database {
  connection_string: string;
}

/** Studio's direct URI (DatabaseSettings.utils getConnectionStrings: `direct.uri`). */
const directUri = (d: Database) => `postgresql://${d.db_user}:[YOUR-PASSWORD]@${d.db_host}:${d.db_port}/${d.db_name}`;

describe("the Connect dialog", () => {
  it("opens: the project is ACTIVE_HEALTHY and the organization is on the plan whose pooler it reads", async () => {
    expect((await get<{ status: string }>(`/platform/projects/${ref}`)).status).toBe("ACTIVE_HEALTHY");
    // plan.id === "free" → Studio prefers the shared pooler: config/supavisor, by identifier.
    const org = await get<{ plan: { id: string } }>(`/platform/organizations/${team.slug}`);
    expect(org.plan.id).toBe("free");
    // Its other calls answer (their failure shows "Failed to retrieve database settings").
    const pgbouncer = await get(`/platform/projects/${ref}/config/pgbouncer`);
    expectMatchesSchema("PgbouncerConfigResponse", pgbouncer);
    expect(await get(`/platform/projects/${ref}/config/pgbouncer/status`)).toEqual({ active: false });
    const addons = await get<{ selected_addons: { type: string }[] }>(`/platform/projects/${ref}/billing/addons`);
    expect(addons.selected_addons.some((a) => a.type === "ipv4")).toBe(false);
    const settings = await get<{ app_config: { endpoint: string; protocol: string } }>(
      `/platform/projects/${ref}/settings`,
    );
    expect(settings.app_config.endpoint).toMatch(/^[\w.:[\]-]+:\d+$/);
    const keys = await get<{ name: string }[]>(`/v1/projects/${ref}/api-keys`);
    expect(keys.map((k) => k.name)).toContain("anon");
  });

  it("shows the direct and pooler connection strings of the project's host and reserved ports", async () => {
    const ours = await records(ref);
    // The default release publishes no Postgres port: direct connections reach Postgres through
    // Supavisor's session port, which finds the project (its tenant) in the user name.
    expect(ours.db).toBeUndefined();
    expect(ours.session).toBeGreaterThan(0);
    expect(ours.pooler).toBeGreaterThan(0);

    const databases = await get<Database[]>(`/platform/projects/${ref}/databases`);
    for (const d of databases) expectMatchesSchema("DatabaseDetailResponse", d);
    // The primary is selected by default (selectedDatabaseId = ref): it must be there, or Studio
    // treats the selection as a replica.
    const primary = databases.find((d) => d.identifier === ref) as Database;
    const direct = { db_host: ours.address, db_port: ours.session, db_name: "postgres", db_user: `postgres.${ref}` };
    expect(primary).toMatchObject(direct);
    expect(directUri(primary)).toBe(
      `postgresql://postgres.${ref}:[YOUR-PASSWORD]@${ours.address}:${ours.session}/postgres`,
    );
    // The project settings page and the pgbouncer answer give the same direct facts.
    expect(await get(`/platform/projects/${ref}/settings`)).toMatchObject(direct);
    expect(await get(`/platform/projects/${ref}/config/pgbouncer`)).toMatchObject({
      ...direct,
      connection_string: directUri(primary),
    });

    const supavisor = await get<Pooler[]>(`/platform/projects/${ref}/config/supavisor`);
    for (const p of supavisor) expectMatchesSchema("SupavisorConfigResponse", p);
    const shared = supavisor.find((p) => p.identifier === ref) as Pooler;
    // Studio shows `connection_string` as the pooler URI, and host/port/user as its parameters.
    expect(shared).toMatchObject({ db_host: ours.address, db_port: ours.pooler, db_user: `postgres.${ref}` });
    expect(shared.connection_string).toBe(
      `postgresql://postgres.${ref}:[YOUR-PASSWORD]@${ours.address}:${ours.pooler}/postgres`,
    );
    // Never the password: the placeholder Studio shows instead.
    expect(JSON.stringify([databases, supavisor])).not.toContain(TEST_DB_PASS);

    // The Management API's pooler call answers the same entries (the CLI's `link` reads it).
    const v1 = await get(`/v1/projects/${ref}/config/database/pooler`);
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/database/pooler", 200, v1);
    expect(v1).toEqual(supavisor);
  });

  it("a release without a pooler answers no pooler entry, so Studio shows the direct connection only", async () => {
    const ours = await records(localRef);
    expect(await get(`/platform/projects/${localRef}/config/supavisor`)).toEqual([]);
    expect(await get(`/v1/projects/${localRef}/config/database/pooler`)).toEqual([]);
    const [primary] = await get<Database[]>(`/platform/projects/${localRef}/databases`);
    // Its Postgres port is published: `postgres` connects directly.
    expect(primary).toMatchObject({
      identifier: localRef,
      db_host: ours.address,
      db_port: ours.db,
      db_user: "postgres",
    });
  });

  it("every call is 404 for another tenant and 401 without a session", async () => {
    for (const path of [
      `/platform/projects/${ref}/databases`,
      `/platform/projects/${ref}/config/supavisor`,
      `/platform/projects/${ref}/config/pgbouncer`,
      `/platform/projects/${ref}/config/pgbouncer/status`,
      `/v1/projects/${ref}/config/database/pooler`,
    ]) {
      expect((await t.request(path, { token: team.outsider.token })).status, path).toBe(404);
      expect((await t.request(path)).status, path).toBe(401);
    }
  });
});
