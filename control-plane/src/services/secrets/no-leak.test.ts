import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hosts, projects } from "../../db/schema.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { createTeam, type TeamFixture } from "../../test-support/org-fixtures.js";
import { createProjectViaApi, TEST_DB_PASS } from "../../test-support/projects-factory.js";
import { buildApply } from "../fleet/reconcile.js";
import { connectionToken } from "./connection-token.js";
import { loadProjectSecrets } from "./store.js";

let t: TestApp;
let team: TeamFixture;

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
});
afterAll(async () => {
  await t.close();
});

describe("no secret value is ever logged", () => {
  it("across a create, a render and every endpoint that reads secrets", async () => {
    const logsBefore = t.logs.length;
    const { ref } = await createProjectViaApi(t, team.members.owner, team);
    const db = t.deps.database.db;
    const [row] = await db.select().from(projects).where(eq(projects.ref, ref));
    if (!row) throw new Error("no project row");
    const [host] = await db
      .select()
      .from(hosts)
      .where(eq(hosts.id, row.hostId as string));
    const apply = await buildApply(t.deps, db, row, { bindAddress: host?.bindAddress as string });
    expect(apply.stack).toBeTruthy();

    const reads = [
      `/platform/projects/${ref}`,
      `/platform/projects/${ref}/settings`,
      `/platform/projects/${ref}/config/postgrest`,
      `/platform/projects/${ref}/databases`,
      `/platform/projects/${ref}/config/pgbouncer`,
      `/platform/projects/${ref}/config/supavisor`,
      `/v1/projects/${ref}/api-keys?reveal=true`,
      `/v1/projects/${ref}/api-keys/legacy`,
      `/v1/projects/${ref}/health?services=db`,
    ];
    for (const role of ["owner", "developer", "read_only"] as const) {
      for (const path of reads) {
        const res = await t.request(path, { token: team.members[role].token });
        expect(res.status, path).toBe(200);
      }
      await t.request(`/platform/projects/${ref}/api-keys/temporary`, {
        method: "POST",
        token: team.members[role].token,
      });
    }
    // Failures log too: a bad query and an outsider.
    await t.request(`/v1/projects/${ref}/health?services=nope`, { token: team.members.owner.token });
    await t.request(`/v1/projects/${ref}/api-keys?reveal=true`, { token: team.outsider.token });

    const secrets = await loadProjectSecrets(db, t.deps, ref);
    const values = [...Object.values(secrets), TEST_DB_PASS];
    const newLogs = t.logs.slice(logsBefore);
    expect(newLogs.length).toBeGreaterThan(10);
    const all = t.logs.join("\n");
    for (const v of values) expect(all.includes(v), `a secret (${v.length} chars) appears in the logs`).toBe(false);
    // Long enough that a leak would not be a coincidence: fragments of the JWT-shaped values too.
    for (const jwt of [secrets.ANON_KEY, secrets.SERVICE_ROLE_KEY]) {
      expect(all.includes(jwt.split(".")[2] as string)).toBe(false);
    }
    // The connection token is not a secret, but nothing ties it to a password either.
    expect(await connectionToken(t.deps, ref)).not.toContain(TEST_DB_PASS);
  });
});
