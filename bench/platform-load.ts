/**
 * Load benchmark for the platform API (issues: foundation, 17).
 *
 * For each database (PostgreSQL, PGlite) it starts, in one child process, the real control plane,
 * a bare Hono route (the baseline) and the floor app (bench/floor-app.ts: the same JWT check plus
 * one indexed query on the same database). Through the real API it signs up, enrolls a simulated
 * host and creates an organization with N projects. It then drives each route with autocannon,
 * interleaved: every round runs every (connections, target) pair for a few seconds, so all
 * targets see the same machine noise; figures are averaged over the rounds and reported as
 * SupaManager ÷ floor and ÷ bare, with the server process's CPU time per request beside them (less disturbed
 * by the machine's other load than req/s). Loopback only; every phase is bounded in time.
 *
 * Usage: npm run bench:platform [-- --seconds 3 --rounds 3 --connections 10,64 --projects 1000
 *        --drivers postgres,pglite --cpu-prof DIR --only supamanager]
 * --cpu-prof profiles the server process during the measured rounds (not the setup); --only drives
 * only the targets of one kind (bare, floor, supamanager), so such a profile shows one app.
 * --compare DIR also starts DIR's bench/platform-server.ts (a checkout of another revision, with
 * node_modules) on the same PostgreSQL database and drives its control plane as a fourth target
 * ("before"): a before/after of a change measured in one interleaved run.
 * Needs PostgreSQL on 127.0.0.1:5432 (TEST_DATABASE_URL to change).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { joinHost, SIM_CAPACITY, SimAgent } from "./sim-agent.js";
import { adminQuery, api, databaseUrl, machineLine, median, startPlatformServer } from "./support.js";

const { values: opts } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "3" },
    connections: { type: "string", default: "10,64" },
    projects: { type: "string", default: "1000" },
    drivers: { type: "string", default: "postgres,pglite" },
    "cpu-prof": { type: "string" },
    only: { type: "string" },
    compare: { type: "string" },
  },
});
const seconds = Number(opts.seconds);
const rounds = Number(opts.rounds);
const connectionLevels = opts.connections.split(",").map(Number);
const projectCount = Number(opts.projects);
const drivers = opts.drivers.split(",") as ("postgres" | "pglite")[];
// One simulated host takes every project: 1 GiB per project is room for any compute size.
SimAgent.capacity = { ...SIM_CAPACITY, memTotalBytes: (projectCount + 64) * 2 ** 30 };
// …and the host ports of all of them (the server child inherits this environment).
process.env.SUPAMANAGER_PORT_RANGE ??= "10000-65000";
// Creating 1,000 projects queues their applied/health frames on the one host's session; its
// heartbeats wait behind them, so a short offline grace could read the host offline mid-setup.
process.env.SUPAMANAGER_HOST_OFFLINE_SECONDS ??= "600";

interface Target {
  route: string;
  /** "bare" | "floor" | "supamanager" */
  kind: "bare" | "floor" | "supamanager" | "before";
  url: string;
  headers: Record<string, string>;
}

interface Sample {
  route: string;
  kind: Target["kind"];
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  /** The server process's CPU time per request in this window (µs). */
  cpuUs: number;
}

async function runDriver(driver: "postgres" | "pglite") {
  const dbName = `supamanager_bench_${Date.now().toString(36)}`;
  const dataDir = driver === "pglite" ? mkdtempSync(join(tmpdir(), "supamanager-bench-")) : undefined;
  if (driver === "postgres") await adminQuery(`create database "${dbName}"`);
  let server: Awaited<ReturnType<typeof startPlatformServer>> | undefined;
  let before: Awaited<ReturnType<typeof startPlatformServer>> | undefined;
  let host: SimAgent | undefined;
  try {
    server = await startPlatformServer(dataDir ? { pglite: dataDir } : databaseUrl(dbName), {
      ...(opts["cpu-prof"] ? { cpuProfileDir: `${opts["cpu-prof"]}/${driver}` } : {}),
    });
    const { controlPlane, baseline, floor } = server;

    // Setup through the real API: the first account is the instance admin, which enrolls one
    // simulated host (projects need an online host to be placed on).
    const email = "bench@example.test";
    const password = "bench-password-1";
    await api(controlPlane, "/platform/signup", { method: "POST", body: { email, password } });
    const { access_token: token } = await api<{ access_token: string }>(
      controlPlane,
      "/auth/v1/token?grant_type=password",
      { method: "POST", body: { email, password } },
    );
    const auth = { authorization: `Bearer ${token}` };
    await api(controlPlane, "/platform/profile", { token }); // creates the profile row the floor reads
    const joinToken = await api<{ token: string }>(controlPlane, "/platform/fleet/join-tokens", {
      method: "POST",
      token,
      body: { region: "bench-1" },
    });
    host = await SimAgent.connect(controlPlane, await joinHost(controlPlane, joinToken.token, "bench-host"));
    host.startHeartbeats(10);
    const org = await api<{ slug: string }>(controlPlane, "/platform/organizations", {
      method: "POST",
      token,
      body: { name: "Bench", tier: "tier_free" },
    });
    const t0 = performance.now();
    let ref = "";
    for (let i = 0; i < projectCount; i += 20) {
      const created = await Promise.all(
        Array.from({ length: Math.min(20, projectCount - i) }, (_, j) =>
          api<{ ref: string }>(controlPlane, "/platform/projects", {
            method: "POST",
            token,
            body: {
              name: `project-${String(i + j).padStart(4, "0")}`,
              organization_slug: org.slug,
              db_pass: "a-strong-db-password-1",
            },
          }),
        ),
      );
      ref ||= created[0]?.ref ?? "";
    }
    const createSeconds = (performance.now() - t0) / 1000;

    // Same rows from both apps, or the comparison means nothing.
    const page = "limit=100&offset=0&sort=name_asc";
    const ours = await api<{ projects: { ref: string }[] }>(
      controlPlane,
      `/platform/organizations/${org.slug}/projects?${page}`,
      { token },
    );
    const theirs = await api<{ projects: { ref: string }[] }>(floor, `/organizations/${org.slug}/projects?${page}`, {
      token,
    });
    if (JSON.stringify(ours.projects.map((p) => p.ref)) !== JSON.stringify(theirs.projects.map((p) => p.ref))) {
      throw new Error("the floor app's page differs from the control plane's");
    }

    const listRoute = `GET /platform/organizations/{slug}/projects (${projectCount}, page of 100)`;
    const allTargets: Target[] = [
      { route: "bare", kind: "bare", url: `${baseline}/bare`, headers: {} },
      { route: "GET /platform/profile", kind: "floor", url: `${floor}/profile`, headers: auth },
      { route: "GET /platform/profile", kind: "supamanager", url: `${controlPlane}/platform/profile`, headers: auth },
      { route: listRoute, kind: "floor", url: `${floor}/organizations/${org.slug}/projects?${page}`, headers: auth },
      {
        route: listRoute,
        kind: "supamanager",
        url: `${controlPlane}/platform/organizations/${org.slug}/projects?${page}`,
        headers: auth,
      },
      { route: "GET /platform/projects/{ref}", kind: "floor", url: `${floor}/projects/${ref}`, headers: auth },
      {
        route: "GET /platform/projects/{ref}",
        kind: "supamanager",
        url: `${controlPlane}/platform/projects/${ref}`,
        headers: auth,
      },
      {
        route: "GET /platform/projects/{ref}/status",
        kind: "floor",
        url: `${floor}/projects/${ref}/status`,
        headers: auth,
      },
      {
        route: "GET /platform/projects/{ref}/status",
        kind: "supamanager",
        url: `${controlPlane}/platform/projects/${ref}/status`,
        headers: auth,
      },
    ];
    if (opts.compare && driver === "postgres") {
      // The other revision's control plane on the same database (the same secrets: the same token works).
      before = await startPlatformServer(databaseUrl(dbName), { cwd: opts.compare });
      for (const t of allTargets.filter((x) => x.kind === "supamanager")) {
        allTargets.push({ ...t, kind: "before", url: t.url.replace(controlPlane, before.controlPlane) });
      }
    }
    const targets = opts.only ? allTargets.filter((t) => t.kind === opts.only) : allTargets;
    const drive = async (t: Target, connections: number, duration: number) => {
      const r = await autocannon({ url: t.url, headers: t.headers, connections, duration, timeout: 30 });
      if (r.non2xx > 0 || r.errors > 0)
        throw new Error(`${t.kind} ${t.route}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      return r;
    };
    for (const t of targets) await drive(t, 10, 1); // warm-up: JIT, pools
    server.startProfile();

    const samples: Sample[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const connections of connectionLevels) {
        for (const t of targets) {
          const cpu0 = await api<{ us: number }>(baseline, "/cpu");
          const r = await drive(t, connections, seconds);
          const cpu1 = await api<{ us: number }>(baseline, "/cpu");
          samples.push({
            route: t.route,
            kind: t.kind,
            connections,
            rps: r.requests.total / ((r.finish.getTime() - r.start.getTime()) / 1000),
            p50: r.latency.p50,
            p99: r.latency.p99,
            cpuUs: (cpu1.us - cpu0.us) / Math.max(1, r.requests.total),
          });
        }
      }
    }
    return { driver, createSeconds, samples };
  } finally {
    host?.close();
    await before?.stop();
    await server?.stop();
    if (driver === "postgres") await adminQuery(`drop database if exists "${dbName}" with (force)`);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function summarise(samples: Sample[]) {
  const rows = [];
  const connections = [...new Set(samples.map((s) => s.connections))];
  const routes = [...new Set(samples.filter((s) => s.kind !== "bare").map((s) => s.route))];
  for (const c of connections) {
    const of = (route: string, kind: Target["kind"]) =>
      samples.filter((s) => s.connections === c && s.route === route && s.kind === kind);
    const bare = mean(of("bare", "bare").map((s) => s.rps));
    for (const route of routes) {
      const floor = of(route, "floor");
      const ours = of(route, "supamanager");
      const rps = mean(ours.map((s) => s.rps));
      const floorRps = mean(floor.map((s) => s.rps));
      const previous = of(route, "before");
      const beforeRps = previous.length > 0 ? mean(previous.map((s) => s.rps)) : undefined;
      const cpuUs = median(ours.map((s) => s.cpuUs));
      const floorCpuUs = median(floor.map((s) => s.cpuUs));
      rows.push({
        route,
        connections: c,
        rps,
        cpuUs,
        floorCpuUs,
        cpuToFloor: cpuUs / floorCpuUs,
        ...(beforeRps !== undefined
          ? { beforeRps, beforeP99: median(previous.map((s) => s.p99)), beforeToFloor: beforeRps / floorRps }
          : {}),
        p50: median(ours.map((s) => s.p50)),
        p99: median(ours.map((s) => s.p99)),
        floorRps,
        floorP50: median(floor.map((s) => s.p50)),
        floorP99: median(floor.map((s) => s.p99)),
        bareRps: bare,
        ratioToFloor: rps / floorRps,
        ratioToBare: rps / bare,
      });
    }
  }
  return rows;
}

function print(d: { driver: string; createSeconds: number; rows: ReturnType<typeof summarise> }) {
  console.log(`\n${d.driver}: created ${projectCount} projects through the API in ${d.createSeconds.toFixed(1)} s`);
  console.log(
    "| route | conns | req/s | p50 ms | p99 ms | floor req/s | floor p99 ms | ÷ floor | ÷ bare | CPU µs/req | floor CPU µs/req | CPU ÷ floor |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of d.rows) {
    console.log(
      `| ${r.route} | ${r.connections} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.floorRps.toFixed(0)} | ${r.floorP99} | ${r.ratioToFloor.toFixed(2)} | ${r.ratioToBare.toFixed(3)} | ${r.cpuUs.toFixed(0)} | ${r.floorCpuUs.toFixed(0)} | ${r.cpuToFloor.toFixed(2)} |`,
    );
  }
  if (d.rows.some((r) => r.beforeRps !== undefined)) {
    console.log("\nthe same run, the --compare revision (before) beside this one (after):");
    console.log(
      "| route | conns | before req/s | before p99 ms | before ÷ floor | after req/s | after p99 ms | after ÷ floor |",
    );
    console.log("|---|---|---|---|---|---|---|---|");
    for (const r of d.rows) {
      console.log(
        `| ${r.route} | ${r.connections} | ${r.beforeRps?.toFixed(0)} | ${r.beforeP99} | ${r.beforeToFloor?.toFixed(2)} | ${r.rps.toFixed(0)} | ${r.p99} | ${r.ratioToFloor.toFixed(2)} |`,
      );
    }
  }
  const bare = d.rows
    .filter((r) => r.route === d.rows[0]?.route)
    .map((r) => `${r.connections}: ${r.bareRps.toFixed(0)}`);
  console.log(`bare Hono route req/s by connections — ${bare.join(", ")}`);
}

async function main() {
  const machine = machineLine();
  const report = {
    date: new Date().toISOString(),
    machine,
    settings: { seconds, rounds, connections: connectionLevels, projects: projectCount },
    drivers: [] as { driver: string; createSeconds: number; rows: ReturnType<typeof summarise> }[],
  };
  console.log(`machine: ${machine}; ${rounds} rounds × ${seconds} s per target, interleaved`);
  mkdirSync("bench/results", { recursive: true });
  for (const driver of drivers) {
    const { createSeconds, samples } = await runDriver(driver);
    const result = { driver, createSeconds, rows: summarise(samples) };
    report.drivers.push(result);
    print(result);
    writeFileSync("bench/results/platform-load.json", `${JSON.stringify(report, null, 2)}\n`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
