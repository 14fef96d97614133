import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_17_RELEASE } from "../../control-plane/src/releases/local.js";
import { ReleaseManifest } from "../../control-plane/src/releases/manifest.js";
import { UPGRADE_SAMPLE_SQL } from "../../host-agent/src/test-support/upgrade-data.js";
import { UPGRADE_LABEL } from "../../host-agent/src/upgrades/docker-major.js";
import { Fleet, LOCAL_IMAGES_FILE, type ProjectJson, prerequisites, projectDb, sleep } from "../fleet/fleet-harness.js";
import { ensureAgentBuilt } from "../support/agent-process.js";
import { docker, projectContainers, projectVolumes } from "../support/docker.js";

/**
 * Project upgrades end to end on a real Docker engine (issue 18, docs/upgrades.md): the built
 * control plane on PostgreSQL, one built host agent, projects on the `local` release
 * (PostgreSQL 15) holding 110k rows over three tables, two extensions, a view and functions.
 *
 * - 15 → 17 (`local-17`): the data step moves everything into a new PostgreSQL 17 cluster; the
 *   project is ACTIVE_HEALTHY on local-17 with the same rows and objects, and Studio's SQL path
 *   (pg-meta through the agent) answers;
 * - 15 → 17 with a target whose gateway never becomes healthy (a release in the releases file,
 *   the failure comes after the data step): rolled back, ACTIVE_HEALTHY on local with its
 *   PostgreSQL 15 data, the failure in status_reason;
 * - the agent SIGKILLed during the data step: the restarted agent rolls back from its journal and
 *   the control plane collects the answer; the project is whole on its old release;
 * - the same major (`local-17` → a copy of it): no data step, the stack is replaced.
 * The upgrades run without a backup target (`allow_without_backup`): backups have their own tests.
 */

const CI = process.env.CI === "true";
const pre = await prerequisites();
if (!pre.ok && !CI) {
  console.warn(
    `\n!!! SKIPPING the upgrade end-to-end tests: ${pre.why}. Run \`bash .ci/start-docker && npm run images:test\`.\n`,
  );
}

const AGENT = "upgrade-host";
const PASSWORD = "upgrade-e2e-password-0123";

const DATA_SQL = UPGRADE_SAMPLE_SQL;

/** What must be the same before and after: counts, objects, and answers of the view and functions. */
const FINGERPRINT_SQL = `select json_build_object(
  'customers', (select count(*) from customers),
  'orders', (select count(*) from orders),
  'events', (select count(*) from audit.events),
  'orders_sum', (select sum(total)::text from orders),
  'extensions', (select json_agg(extname order by extname) from pg_extension),
  'big_customers', (select count(*) from big_customers),
  'spent_by_7', (select spent_by(7)::text),
  'trgm', (select count(*) from customers where name % 'customer 12345'),
  'tier', (select count(*) from customers where tags -> 'tier' = '2'),
  'trigger', (select count(*) from pg_trigger where tgname = 'orders_audit'),
  'read_only_role', (select count(*) from pg_roles where rolname = 'supamanager_read_only')
) as f`;

interface UpgradeJson {
  id: string;
  status: string;
  step: string;
  failed_step: string | null;
  error: string | null;
  from_release: string;
  to_release: string;
}
interface StatusJson {
  ref: string;
  project_status: string;
  status_reason: string | null;
  release: string;
  upgrade: UpgradeJson | null;
}

/** The releases file: a PostgreSQL 17 target whose gateway is never healthy, and a copy of local-17. */
function releasesFile(dir: string): string {
  const images = JSON.parse(readFileSync(LOCAL_IMAGES_FILE, "utf8")) as Record<string, string>;
  const pinned = (m: typeof LOCAL_17_RELEASE, name: string, description: string) => {
    const r = ReleaseManifest.parse({ ...m, name, description });
    for (const svc of Object.values(r.services)) if (svc.imageKey) svc.image = images[svc.imageKey] ?? svc.image;
    return r;
  };
  const unhealthy = pinned(LOCAL_17_RELEASE, "local-17-unhealthy", "local-17 whose gateway never becomes healthy");
  const gateway = unhealthy.services.gateway;
  if (!gateway?.health) throw new Error("local-17 has no gateway health check");
  gateway.health = { ...gateway.health, test: ["CMD", "false"], intervalSeconds: 1, retries: 2, startPeriodSeconds: 0 };
  const copy = pinned(LOCAL_17_RELEASE, "local-17-copy", "local-17 under another name (a same-major upgrade)");
  const file = join(dir, "releases.json");
  writeFileSync(file, JSON.stringify([unhealthy, copy]));
  return file;
}

const fleet = new Fleet();
const clients: pg.Client[] = [];

async function db(ref: string): Promise<pg.Client> {
  const p = await fleet.project(ref);
  expect(p.status, p.text).toBe(200);
  const port = p.body.db_port ?? Number(/:(\d+)$/.exec(String(p.body.db_host))?.[1]);
  const c = await projectDb(String(p.body.db_host), port, PASSWORD);
  clients.push(c);
  return c;
}

async function fingerprint(ref: string): Promise<{ major: number; f: Record<string, unknown> }> {
  const c = await db(ref);
  try {
    const v = await c.query<{ v: string }>("select current_setting('server_version_num') as v");
    const f = await c.query<{ f: Record<string, unknown> }>(FINGERPRINT_SQL);
    return { major: Math.floor(Number(v.rows[0]?.v) / 10000), f: f.rows[0]?.f ?? {} };
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function newProject(name: string): Promise<ProjectJson> {
  const p = await fleet.createProject(name, "eu-1", PASSWORD);
  await fleet.waitForStatus(p.ref, "ACTIVE_HEALTHY", 180_000);
  const c = await db(p.ref);
  try {
    await c.query(DATA_SQL);
  } finally {
    await c.end().catch(() => undefined);
  }
  return p;
}

async function startUpgrade(ref: string, target: string): Promise<UpgradeJson> {
  const res = await fleet.api<UpgradeJson>("POST", `/platform/projects/${ref}/upgrade`, {
    target_release: target,
    allow_without_backup: true,
  });
  expect(res.status, res.text).toBe(202);
  expect(res.body).toMatchObject({ from_release: expect.any(String), to_release: target });
  return res.body;
}

/** Poll the upgrade's status until it ended (or `until` holds); bounded, explains itself. */
async function followUpgrade(
  ref: string,
  id: string,
  timeoutMs: number,
  until: (s: StatusJson) => boolean = (s) => s.upgrade?.status !== "RUNNING",
): Promise<{ last: StatusJson; steps: string[] }> {
  const deadline = Date.now() + timeoutMs;
  const steps: string[] = [];
  let last: StatusJson | null = null;
  while (Date.now() < deadline) {
    const r = await fleet
      .api<StatusJson>("GET", `/platform/projects/${ref}/upgrade/status?id=${id}`)
      .catch(() => ({ status: 0, body: null }));
    if (r.status === 200 && r.body) {
      last = r.body;
      const step = r.body.upgrade?.step ?? "-";
      if (steps.at(-1) !== step) steps.push(step);
      if (until(r.body)) return { last: r.body, steps };
    }
    await sleep(300);
  }
  throw new Error(
    await fleet.explain(
      ref,
      `upgrade ${id} did not get there within ${timeoutMs} ms; steps ${steps.join(" → ")}; last ${JSON.stringify(last)}`,
    ),
  );
}

async function expectCleanAfterUpgrade(ref: string): Promise<void> {
  // The copy of the old data and the temporary old-major server are gone.
  expect(await projectVolumes(ref)).toEqual([`${ref}_db-data`]);
  const helpers = await docker(["ps", "-aq", "--filter", `label=${UPGRADE_LABEL}=${ref}`]);
  expect(helpers.trim()).toBe("");
  const rows = await projectContainers(ref);
  expect(rows.map((c) => `${c.service}:${c.state}:${c.health}`).sort()).toEqual([
    "db:running:healthy",
    "gateway:running:healthy",
    "meta:running:healthy",
  ]);
}

async function studioSql(ref: string, query: string): Promise<unknown> {
  const res = await fleet.api<unknown>("POST", `/platform/pg-meta/${ref}/query`, { query });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

describe.skipIf(!pre.ok && !CI)("project upgrades on a real Docker engine", () => {
  let upgraded: ProjectJson | null = null;
  let rolledBack: ProjectJson | null = null;
  let before: Record<string, unknown> = {};

  beforeAll(async () => {
    if (!pre.ok) throw new Error(`CI=true and the upgrade end-to-end tests cannot run: ${pre.why}`);
    ensureAgentBuilt();
    await fleet.start({ SUPAMANAGER_RELEASES_FILE: releasesFile(fleet.tmpDir("releases")) });
    await fleet.enroll(AGENT, "eu-1", "127.0.0.1");
    await fleet.waitForHost(AGENT, (h) => h.status === "online", 30_000);
    // Two projects with the same data, made side by side.
    [upgraded, rolledBack] = await Promise.all([newProject("upgrade-ok"), newProject("upgrade-fails")]);
    before = (await fingerprint(upgraded.ref)).f;
  }, 420_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    const errors = await fleet.cleanup();
    if (errors.length > 0) console.warn(`fleet cleanup problems:\n${errors.join("\n")}`);
  }, 180_000);

  it("has the data it is tested with", async () => {
    expect((await fleet.project((upgraded as ProjectJson).ref)).body.dbVersion).toMatch(/^supabase-postgres-15\./);
    expect(before).toMatchObject({ customers: 30000, orders: 70000, events: 10000, trigger: 1, read_only_role: 1 });
    expect(before.extensions).toEqual(["hstore", "pg_trgm", "plpgsql"]);
    expect(Number(before.big_customers)).toBeGreaterThan(0);
  });

  it("upgrades PostgreSQL 15 to 17: same rows and objects, ACTIVE_HEALTHY, Studio's SQL path works", {
    timeout: 600_000,
  }, async () => {
    const ref = (upgraded as ProjectJson).ref;
    const started = await startUpgrade(ref, "local-17");
    const { last, steps } = await followUpgrade(ref, started.id, 540_000);
    expect(last.upgrade, JSON.stringify(last)).toMatchObject({ status: "COMPLETED", failed_step: null, error: null });
    expect(steps).toContain("migrating_data");
    expect(last.release).toBe("local-17");
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 120_000);
    const after = await fingerprint(ref);
    expect(after.major).toBe(17);
    expect(after.f).toEqual(before);
    const rows = await studioSql(
      ref,
      "select count(*)::int as n, current_setting('server_version_num')::int / 10000 as major from orders",
    );
    expect(rows).toEqual([{ n: 70000, major: 17 }]);
    await expectCleanAfterUpgrade(ref);
    // Studio and the Management API show the new major.
    expect((await fleet.project(ref)).body.dbVersion).toMatch(/^supabase-postgres-17\./);
    const v1 = await fleet.api<{ database: { version: string; postgres_engine: string } }>(
      "GET",
      `/v1/projects/${ref}`,
    );
    expect(v1.body.database).toMatchObject({ version: expect.stringMatching(/^17\./), postgres_engine: "17" });
    // The agent said what it did.
    const logs = fleet.agent(AGENT).proc?.logs() ?? [];
    expect(logs.some((l) => l.msg === "data moved to the new PostgreSQL major")).toBe(true);
    expect(logs.some((l) => l.msg === "the project's API answers through its gateway" && l.ref === ref)).toBe(true);
  });

  it("rolls back when the new release's stack never becomes healthy, after the data step", {
    timeout: 600_000,
  }, async () => {
    const ref = (rolledBack as ProjectJson).ref;
    const started = await startUpgrade(ref, "local-17-unhealthy");
    const { last, steps } = await followUpgrade(ref, started.id, 540_000);
    expect(last.upgrade, JSON.stringify(last)).toMatchObject({ status: "ROLLED_BACK", failed_step: "health_check" });
    expect(steps).toContain("migrating_data");
    expect(last.upgrade?.error).toMatch(/gateway is unhealthy/);
    expect(last.release).toBe("local");
    expect(last.project_status).toBe("ACTIVE_HEALTHY");
    expect(last.status_reason).toMatch(/health check/i);
    const after = await fingerprint(ref);
    expect(after.major).toBe(15);
    expect(after.f).toEqual(before);
    expect(await studioSql(ref, "select count(*)::int as n from customers")).toEqual([{ n: 30000 }]);
    await expectCleanAfterUpgrade(ref);
  });

  it("rolls back from its journal when the agent is SIGKILLed during the data step", {
    timeout: 600_000,
  }, async () => {
    const ref = (rolledBack as ProjectJson).ref;
    const started = await startUpgrade(ref, "local-17");
    await followUpgrade(ref, started.id, 300_000, (s) => s.upgrade?.step === "migrating_data");
    // Into the data step: the old-major server is up on the copy (or about to be).
    await fleet
      .agent(AGENT)
      .proc?.waitForLog((l) => l.msg === "starting the old database server on the copy of the old data", 120_000);
    await fleet.stopAgent(AGENT, "SIGKILL");
    fleet.startAgent(AGENT);
    const { last } = await followUpgrade(ref, started.id, 540_000);
    expect(last.upgrade, JSON.stringify(last)).toMatchObject({ status: "ROLLED_BACK" });
    expect(last.upgrade?.error).toMatch(/host agent stopped during the upgrade/);
    expect(last.release).toBe("local");
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 120_000);
    const after = await fingerprint(ref);
    expect(after.major).toBe(15);
    expect(after.f).toEqual(before);
    await expectCleanAfterUpgrade(ref);
  });

  it("upgrades within a major without a data step", { timeout: 300_000 }, async () => {
    const ref = (upgraded as ProjectJson).ref;
    const started = await startUpgrade(ref, "local-17-copy");
    const { last, steps } = await followUpgrade(ref, started.id, 240_000);
    expect(last.upgrade, JSON.stringify(last)).toMatchObject({ status: "COMPLETED" });
    expect(last.release).toBe("local-17-copy");
    expect(steps).not.toContain("rolling_back");
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 120_000);
    const after = await fingerprint(ref);
    expect(after.major).toBe(17);
    expect(after.f).toEqual(before);
    await expectCleanAfterUpgrade(ref);
  });
});
