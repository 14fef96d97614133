import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiResult, Fleet, prerequisites, projectDb, request } from "../fleet/fleet-harness.js";
import { ensureAgentBuilt } from "../support/agent-process.js";

/**
 * Studio's journeys that need a real project, end to end on a real Docker engine: the built
 * control plane (on PostgreSQL), one built host agent enrolled into region us-east-1, and the
 * `local` release's real PostgreSQL and postgres-meta. The requests are the ones Studio's pages
 * send (apps/studio, February 2026). The steps run in order and share the project.
 */

const CI = process.env.CI === "true";
const pre = await prerequisites();
if (!pre.ok && !CI) {
  console.warn(
    `\n!!! SKIPPING the Studio journey tests: ${pre.why}. Run \`bash .ci/start-docker && npm run images:test\`.\n`,
  );
}

// Its own loopback address and port range: other end-to-end files run beside this one on the same engine.
const HOST = { agent: "studio-host", region: "us-east-1", bind: "127.0.0.6" };
const FIRST_PASSWORD = "first-Password-0123";
// Characters a generated password may hold, and a `$` Compose must not interpolate.
const NEW_PASSWORD = "new Pa$$word, with spaces & symbols!9";

const fleet = new Fleet();
let ref = "";

const api = <T = unknown>(method: string, path: string, json?: unknown): Promise<ApiResult<T>> =>
  request<T>({ url: fleet.url, token: fleet.token, timeoutMs: 90_000 }, method, path, json);

/**
 * Whether `password` logs in to the project's database: true, false (refused), or the error when
 * no answer came within a minute. Compose recreates the db container when its environment (which
 * holds the password for a first start) changes, so right after a reset the database may be
 * restarting: connection errors are retried, a refused password is an answer at once.
 */
async function canLogIn(port: number, password: string): Promise<boolean | string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const db = await projectDb(HOST.bind, port, password);
      await db.end();
      return true;
    } catch (err) {
      const message = (err as Error).message;
      if (/password authentication failed/.test(message)) return false;
      if (Date.now() > deadline) return message;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

describe.skipIf(!pre.ok && !CI)("Studio's journeys on a real project", () => {
  beforeAll(async () => {
    if (!pre.ok) throw new Error(`CI=true and the Studio journey tests cannot run: ${pre.why}`);
    ensureAgentBuilt();
    await fleet.start();
    await fleet.stopControlPlane();
    await fleet.startControlPlane({ SUPAMANAGER_PORT_RANGE: "49500-49999" });
    await fleet.enroll(HOST.agent, HOST.region, HOST.bind);
    await fleet.waitForHost(HOST.agent, (h) => h.status === "online", 30_000);
  }, 300_000);

  afterAll(async () => {
    const errors = await fleet.cleanup();
    if (errors.length > 0) console.warn(`Studio journey cleanup problems:\n${errors.join("\n")}`);
  }, 180_000);

  it("creates a project from the body Studio's new-project form posts; it reaches ACTIVE_HEALTHY", {
    timeout: 240_000,
  }, async () => {
    // The form first asks which Postgres versions it may offer for the region it shows.
    const versions = await api("POST", `/platform/organizations/${fleet.orgSlug}/available-versions`, {
      provider: "AWS",
      region: "East US (North Virginia)",
    });
    expect(versions.status, versions.text).toBe(200);
    // project-create-mutation's body for a free-plan organization with Studio's built-in region list.
    const created = await api<{ ref: string; region: string; status: string }>("POST", "/platform/projects", {
      cloud_provider: "AWS",
      organization_slug: fleet.orgSlug,
      name: "From Studio's form",
      db_pass: FIRST_PASSWORD,
      db_region: "East US (North Virginia)",
      data_api_use_api_schema: false,
      high_availability: false,
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ region: "us-east-1", status: "COMING_UP" });
    ref = created.body.ref;
    fleet.refs.add(ref);
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 200_000);
  });

  it("resets the database password: the old one is refused, the new one works, Studio's SQL path still runs", {
    timeout: 240_000,
  }, async () => {
    if (!ref) throw new Error("the project was not created (an earlier step failed)");
    const port = (await fleet.project(ref)).body.db_port as number;
    expect(await canLogIn(port, FIRST_PASSWORD)).toBe(true);

    const reset = await api<{ message: string }>("PATCH", `/platform/projects/${ref}/db-password`, {
      password: NEW_PASSWORD,
    });
    expect(reset.status, reset.text).toBe(200);
    // The database took it at once; the services restart with it.
    expect(await canLogIn(port, FIRST_PASSWORD)).toBe(false);
    expect(await canLogIn(port, NEW_PASSWORD)).toBe(true);
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 200_000);
    expect(await canLogIn(port, FIRST_PASSWORD)).toBe(false);
    expect(await canLogIn(port, NEW_PASSWORD)).toBe(true);

    // Studio's SQL editor: the databases call gives the connection token, the query goes through
    // postgres-meta, which now logs in with the new password.
    const dbs = await api<{ connectionString: string }[]>("GET", `/platform/projects/${ref}/databases`);
    expect(dbs.status, dbs.text).toBe(200);
    const query = await request<{ who: string }[]>(
      { url: fleet.url, token: fleet.token, timeoutMs: 30_000 },
      "POST",
      `/platform/pg-meta/${ref}/query?key=studio`,
      { query: "select current_user as who" },
    );
    expect(query.status, query.text).toBe(201);
    expect(query.body).toEqual([{ who: "postgres" }]);
    // A fresh postgres-meta connection (new pool after the restart) proves meta got the new password.
    const tables = await api<unknown[]>("GET", `/platform/pg-meta/${ref}/tables?included_schemas=public`);
    expect(tables.status, tables.text).toBe(200);

    // Audited, without the password.
    const audit = await api<{ result: { action: { name: string; status: number } }[] }>(
      "GET",
      `/platform/organizations/${fleet.orgSlug}/audit`,
    );
    expect(audit.status).toBe(200);
    const row = audit.body.result.find((r) => r.action.name === "project.db_password.reset");
    expect(row?.action.status).toBe(200);
    expect(audit.text).not.toContain(NEW_PASSWORD);
    for (const line of fleet.cpOutput) expect(line).not.toContain(NEW_PASSWORD);
    for (const line of fleet.agent(HOST.agent).proc?.output ?? []) expect(line).not.toContain(NEW_PASSWORD);
  });
});
