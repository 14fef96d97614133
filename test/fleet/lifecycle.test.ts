import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureAgentBuilt } from "../support/agent-process.js";
import { type ContainerRow, projectContainers, projectNetworks, projectVolumes, startedAt } from "../support/docker.js";
import {
  Fleet,
  OFFLINE_SECONDS,
  type ProjectJson,
  prerequisites,
  projectDb,
  sleep,
  writeBrokenRelease,
} from "./fleet-harness.js";

/**
 * The fleet end to end on a real Docker engine: one control plane (built entry, PostgreSQL),
 * two host agents (built CLI) enrolled through join tokens into eu-1 and us-1, and the whole
 * project lifecycle asserted both through the API and through `docker ps` / `docker volume ls`.
 * The tests run in order and share the fleet (each step starts from where the previous left).
 *
 * Both agents run on this one machine, so the us-1 host publishes on 127.0.0.2: ports are
 * reserved per host, and two hosts on one interface could be handed the same port.
 */

const CI = process.env.CI === "true";
const pre = await prerequisites();
if (!pre.ok && !CI) {
  console.warn(
    `\n!!! SKIPPING the fleet end-to-end tests: ${pre.why}. Run \`bash .ci/start-docker && npm run images:test\`.\n`,
  );
}

const EU = { agent: "eu-host", region: "eu-1", bind: "127.0.0.1" };
const US = { agent: "us-host", region: "us-1", bind: "127.0.0.2" };
const SERVICES = ["db", "gateway", "meta"];
// `$` and `${…}` must reach Postgres literally (Compose must not interpolate inside the value).
// biome-ignore lint/suspicious/noTemplateCurlyInString: a literal password, not a JS template
const PASS_A = "eu pass with spaces, $dollars ${NOT_A_VAR} and \\backslash";
const PASS_B = "us-Secret-0123456789";
const PASS_C = "crash-test-password";

const fleet = new Fleet();
/** Projects by role in this file. */
const P: Record<"a" | "b" | "c" | "d", ProjectJson | null> = { a: null, b: null, c: null, d: null };
const ref = (k: keyof typeof P) => {
  const p = P[k];
  if (!p) throw new Error(`project ${k} was not created (an earlier step failed)`);
  return p.ref;
};

async function expectRunningHealthy(r: string, bind: string, ports: { db?: number }): Promise<ContainerRow[]> {
  const rows = await projectContainers(r);
  expect(rows.map((c) => c.service).sort(), JSON.stringify(rows)).toEqual(SERVICES);
  for (const c of rows) {
    expect(c.name).toBe(`${r}-${c.service}`);
    expect(c.state, JSON.stringify(c)).toBe("running");
    expect(c.health, JSON.stringify(c)).toBe("healthy");
    // Every published port is on the host's bind address only (never 0.0.0.0 or ::).
    for (const mapping of c.ports.split(",").map((s) => s.trim())) {
      if (mapping.includes("->")) expect(mapping.startsWith(`${bind}:`), c.ports).toBe(true);
    }
    expect(c.ports).not.toMatch(/0\.0\.0\.0|:::/);
  }
  if (ports.db) expect(rows.find((c) => c.service === "db")?.ports).toContain(`${bind}:${ports.db}->5432/tcp`);
  expect(rows.find((c) => c.service === "gateway")?.ports).toMatch(
    new RegExp(`^${bind.replace(/\./g, "\\.")}:\\d+->8000/tcp$`),
  );
  return rows;
}

async function expectNetworkAndVolumes(r: string): Promise<void> {
  expect(await projectNetworks(r)).toEqual([`${r}_net`]);
  expect(await projectVolumes(r)).toEqual([`${r}_db-data`]);
}

async function lifecycle(r: string, request: "pause" | "restore" | "restart") {
  const res = await fleet.api<{ ref: string; status: string; pending_reason?: string }>(
    "POST",
    `/platform/projects/${r}/${request}`,
  );
  expect(res.status, res.text).toBe(200);
  expect(res.body.ref).toBe(r);
  return res.body;
}

function appliedState(agent: string, r: string): { appliedVersion: number; desiredState: string } | null {
  const file = `${fleet.projectDir(agent, r)}/state.json`;
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : null;
}

describe.skipIf(!pre.ok && !CI)("fleet lifecycle on a real Docker engine", () => {
  beforeAll(async () => {
    if (!pre.ok) throw new Error(`CI=true and the fleet end-to-end tests cannot run: ${pre.why}`);
    ensureAgentBuilt();
    await fleet.start();
    await fleet.enroll(EU.agent, EU.region, EU.bind);
    await fleet.enroll(US.agent, US.region, US.bind);
  }, 240_000);

  afterAll(async () => {
    const errors = await fleet.cleanup();
    if (errors.length > 0) console.warn(`fleet cleanup problems:\n${errors.join("\n")}`);
  }, 180_000);

  it("lists both hosts online, in their regions, with capacity", { timeout: 30_000 }, async () => {
    for (const h of [EU, US]) {
      const host = await fleet.waitForHost(h.agent, (x) => x.status === "online" && x.capacity.cpus !== null, 20_000);
      expect(host).toMatchObject({ name: h.agent, region: h.region, bind_address: h.bind, status: "online" });
      expect(["v1", "v2"]).toContain(host.compose);
      expect(host.agent_version).toEqual(expect.any(String));
      expect(host.capacity.cpus).toBeGreaterThan(0);
      expect(host.capacity.mem_total_bytes).toBeGreaterThan(0);
      expect(host.capacity.mem_free_bytes).toBeGreaterThan(0);
      expect(host.capacity.mem_reserved_bytes).toBe(0);
    }
    const regions = await fleet.api<{ code: string; online_hosts: number }[]>("GET", "/platform/fleet/regions");
    expect(regions.body.map((r) => [r.code, r.online_hosts])).toEqual([
      ["eu-1", 1],
      ["us-1", 1],
    ]);
  });

  // The first start of a project initialises its database: on a loaded 2-core machine the apply
  // alone took 59 s, so this step allows more than the harness' default wait.
  it("creates a project in each region, each on its region's host, up to ACTIVE_HEALTHY", {
    timeout: 300_000,
  }, async () => {
    P.a = await fleet.createProject("eu project", EU.region, PASS_A);
    P.b = await fleet.createProject("us project", US.region, PASS_B);
    for (const p of [P.a, P.b]) expect(p.status).toBe("COMING_UP");
    await Promise.all([
      fleet.waitForStatus(ref("a"), "ACTIVE_HEALTHY", 240_000),
      fleet.waitForStatus(ref("b"), "ACTIVE_HEALTHY", 240_000),
    ]);

    for (const [k, h, pass] of [
      ["a", EU, PASS_A],
      ["b", US, PASS_B],
    ] as const) {
      const r = ref(k);
      const detail = await fleet.project(r);
      expect(detail.status).toBe(200);
      expect(detail.body).toMatchObject({ ref: r, status: "ACTIVE_HEALTHY", region: h.region, db_host: h.bind });
      expect(detail.body.status_reason).toBeUndefined();
      expect(detail.body.pending_reason).toBeUndefined();
      const dbPort = detail.body.db_port;
      expect(dbPort).toEqual(expect.any(Number));
      // It landed on its region's host (the other host has no trace of it).
      expect(existsSync(fleet.projectDir(h.agent, r))).toBe(true);
      expect(existsSync(fleet.projectDir(h === EU ? US.agent : EU.agent, r))).toBe(false);

      await expectRunningHealthy(r, h.bind, { db: dbPort });
      await expectNetworkAndVolumes(r);

      // The project's own Postgres takes the db_pass given at create (and nothing else).
      const db = await projectDb(h.bind, dbPort as number, pass);
      try {
        expect((await db.query("select current_user as u")).rows[0]).toEqual({ u: "postgres" });
      } finally {
        await db.end();
      }
      await expect(projectDb(h.bind, dbPort as number, "wrong password")).rejects.toThrow(
        /password authentication failed/,
      );
    }
    const hosts = await fleet.hosts();
    for (const h of [EU, US]) {
      const host = hosts.find((x) => x.name === h.agent);
      expect(host?.project_count).toBe(1);
    }
  });

  it("pauses (containers stopped, volumes kept) and restores with the data intact", { timeout: 150_000 }, async () => {
    const r = ref("a");
    const { db_port: dbPort } = (await fleet.project(r)).body;
    const db = await projectDb(EU.bind, dbPort as number, PASS_A);
    try {
      await db.query("create table survivors (id int primary key, note text)");
      await db.query("insert into survivors values (1, 'written before the pause')");
    } finally {
      await db.end();
    }

    expect((await lifecycle(r, "pause")).status).toBe("PAUSING");
    const history = await fleet.waitForStatus(r, "INACTIVE");
    expect(["PAUSING", "INACTIVE"]).toContain(history[0]?.status);
    const stopped = await projectContainers(r);
    expect(stopped.map((c) => [c.service, c.state])).toEqual(SERVICES.map((s) => [s, "exited"]));
    await expectNetworkAndVolumes(r);
    expect(appliedState(EU.agent, r)).toMatchObject({ desiredState: "paused" });

    const ps = await fleet.api<Record<string, unknown>>("GET", `/platform/projects/${r}/pause/status`);
    expect(ps.status, ps.text).toBe(200);
    expect(ps.body).toMatchObject({ can_restore: true });
    expect(ps.body.last_paused_on).toEqual(expect.any(String));
    // Pausing a paused project is refused with the status named.
    const again = await fleet.api<{ message: string }>("POST", `/platform/projects/${r}/pause`);
    expect(again.status).toBe(409);
    expect(again.body.message).toContain("INACTIVE");

    expect((await lifecycle(r, "restore")).status).toBe("RESTORING");
    await fleet.waitForStatus(r, "ACTIVE_HEALTHY");
    await expectRunningHealthy(r, EU.bind, { db: dbPort });
    const db2 = await projectDb(EU.bind, dbPort as number, PASS_A);
    try {
      expect((await db2.query("select id, note from survivors")).rows).toEqual([
        { id: 1, note: "written before the pause" },
      ]);
    } finally {
      await db2.end();
    }
  });

  it("restarts (new container start times) back to ACTIVE_HEALTHY", { timeout: 120_000 }, async () => {
    const r = ref("a");
    const names = SERVICES.map((s) => `${r}-${s}`);
    const before = await startedAt(names);
    expect((await lifecycle(r, "restart")).status).toBe("RESTARTING");
    await fleet.waitForStatus(r, "ACTIVE_HEALTHY");
    const after = await startedAt(names);
    for (const n of names) {
      expect(after[n], n).toBeTruthy();
      expect(after[n], n).not.toBe(before[n]);
    }
    await expectRunningHealthy(r, EU.bind, {});
  });

  it("a control plane killed right after a pause request converges after its restart", {
    timeout: 150_000,
  }, async () => {
    const r = ref("b");
    expect((await lifecycle(r, "pause")).status).toBe("PAUSING");
    await fleet.stopControlPlane("SIGKILL");
    await fleet.startControlPlane();
    const history = await fleet.waitForStatus(r, "INACTIVE");
    expect(history.at(-1)?.status).toBe("INACTIVE");
    const rows = await projectContainers(r);
    expect(rows.map((c) => [c.service, c.state])).toEqual(SERVICES.map((s) => [s, "exited"]));
    await expectNetworkAndVolumes(r);
    // Both agents came back to the new process.
    for (const h of [EU, US]) await fleet.waitForHost(h.agent, (x) => x.status === "online", 20_000);
  });

  it("a pause for a project whose host is offline waits (pending_reason, UNKNOWN) and runs on reconnect", {
    timeout: 150_000,
  }, async () => {
    const r = ref("a");
    const stop = await fleet.stopAgent(EU.agent, "SIGTERM");
    expect(stop).toEqual({ code: 0, signal: null });
    await fleet.waitForHost(EU.agent, (h) => h.status === "offline", (OFFLINE_SECONDS + 10) * 1000);

    // No stale health: the running project reads UNKNOWN while nobody can vouch for it.
    const unknown = await fleet.project(r);
    expect(unknown.body.status).toBe("UNKNOWN");
    const regions = await fleet.api<{ code: string; online_hosts: number }[]>("GET", "/platform/fleet/regions");
    expect(regions.body.find((x) => x.code === "eu-1")?.online_hosts).toBe(0);
    // Nothing can be placed in eu-1 now.
    const refused = await fleet.api("POST", "/platform/projects", {
      name: "nowhere",
      organization_slug: fleet.orgSlug,
      db_pass: "some-password-1",
      db_region: "eu-1",
    });
    expect(refused.status, refused.text).toBe(409);

    const paused = await lifecycle(r, "pause");
    expect(paused.status).toBe("PAUSING");
    expect(paused.pending_reason).toMatch(/offline/);
    await sleep(2_500);
    const waiting = await fleet.project(r);
    expect(waiting.body.status).toBe("PAUSING");
    expect(waiting.body.pending_reason).toMatch(/host is offline/);
    // Not carried out: the containers still run.
    expect((await projectContainers(r)).every((c) => c.state === "running")).toBe(true);

    fleet.startAgent(EU.agent);
    await fleet.waitForStatus(r, "INACTIVE");
    const done = await fleet.project(r);
    expect(done.body.pending_reason).toBeUndefined();
    expect((await projectContainers(r)).map((c) => c.state)).toEqual(["exited", "exited", "exited"]);
  });

  it("an agent SIGKILLed in the middle of an apply converges after it is restarted", { timeout: 180_000 }, async () => {
    const agent = fleet.agent(US.agent).proc;
    if (!agent) throw new Error("us agent is not running");
    P.c = await fleet.createProject("crash project", US.region, PASS_C);
    const r = ref("c");
    await agent.waitForLog((l) => l.msg === "apply received" && l.ref === r, 30_000);
    // Let Compose get going (its first container exists; `up` then waits for db to be healthy
    // before it creates meta), then kill the agent together with its Compose command.
    const deadline = Date.now() + 20_000;
    while ((await projectContainers(r)).length === 0 && Date.now() < deadline) await sleep(100);
    const partial = await projectContainers(r);
    const killed = await fleet.stopAgent(US.agent, "SIGKILL");
    expect(killed?.signal).toBe("SIGKILL");
    expect(partial.length, "Compose had not started any container within 20 s").toBeGreaterThan(0);
    // The apply never finished: nothing recorded it, on either side.
    expect(appliedState(US.agent, r)).toBeNull();
    expect((await fleet.api<{ status: string }>("GET", `/platform/projects/${r}/status`)).body.status).toBe(
      "COMING_UP",
    );

    fleet.startAgent(US.agent);
    await fleet.waitForStatus(r, "ACTIVE_HEALTHY");
    const detail = (await fleet.project(r)).body;
    await expectRunningHealthy(r, US.bind, { db: detail.db_port as number });
    await expectNetworkAndVolumes(r);
    expect(appliedState(US.agent, r)).toMatchObject({ appliedVersion: 1, desiredState: "running" });
    const db = await projectDb(US.bind, detail.db_port as number, PASS_C);
    await db.end();
  });

  it("an apply that fails ends in INIT_FAILED with the reason readable through the API", {
    timeout: 150_000,
  }, async () => {
    // The release of new projects is chosen by SUPAMANAGER_RELEASE: restart the control plane
    // with a release whose image cannot be pulled (existing projects keep the `local` release).
    await fleet.stopControlPlane("SIGTERM");
    await fleet.startControlPlane({
      SUPAMANAGER_RELEASES_FILE: writeBrokenRelease(fleet.tmpDir("releases")),
      SUPAMANAGER_RELEASE: "broken",
    });
    await fleet.waitForHost(EU.agent, (h) => h.status === "online", 30_000);
    P.d = await fleet.createProject("doomed project", EU.region, "doomed-password");
    const r = ref("d");
    await fleet.waitForStatus(r, "INIT_FAILED", 90_000);
    const detail = await fleet.project(r);
    expect(detail.body.status).toBe("INIT_FAILED");
    // The agent pulls before `compose up` and names the image it could not pull.
    expect(detail.body.status_reason).toMatch(/docker(-| )compose up|cannot pull image/);
    expect(detail.body.status_reason).toContain("does-not-exist");
    // The db password never leaks into the reason.
    expect(detail.body.status_reason).not.toContain("doomed-password");
  });

  it("deletes every project: GOING_DOWN → REMOVED, containers, network, volumes and directories gone", {
    timeout: 150_000,
  }, async () => {
    const where: [string, string][] = [
      [ref("a"), EU.agent],
      [ref("b"), US.agent],
      [ref("c"), US.agent],
      [ref("d"), EU.agent],
    ];
    for (const [r] of where) {
      const res = await fleet.api<{ ref: string }>("DELETE", `/platform/projects/${r}`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.ref).toBe(r);
    }
    // Right after the request the project reads GOING_DOWN (or is already gone).
    const first = await fleet.api<{ status: string }>("GET", `/platform/projects/${where[0]?.[0]}/status`);
    expect([200, 404]).toContain(first.status);
    if (first.status === 200) expect(first.body.status).toBe("GOING_DOWN");

    await Promise.all(where.map(([r]) => fleet.waitForStatus(r, "REMOVED")));
    for (const [r, agent] of where) {
      expect((await fleet.project(r)).status).toBe(404);
      expect(await projectContainers(r)).toEqual([]);
      expect(await projectNetworks(r)).toEqual([]);
      expect(await projectVolumes(r)).toEqual([]);
      expect(existsSync(fleet.projectDir(agent, r))).toBe(false);
    }
    const list = await fleet.api<{ projects: { ref: string }[] }>("GET", "/platform/projects");
    expect(list.body.projects.map((p) => p.ref)).toEqual([]);
    const hosts = await fleet.hosts();
    expect(hosts.map((h) => h.project_count)).toEqual([0, 0]);
  });
});
