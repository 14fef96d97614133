/**
 * Fan-in benchmark (fleet issue): N protocol-level simulated agents against ONE Node control-plane
 * process (the built entry, on PostgreSQL), measuring
 *   - connect storm: time for N agents to connect, send hello and receive welcome;
 *   - steady state: the control plane's RSS and CPU while every agent heartbeats;
 *   - apply latency: for P projects created through the API, time from the create request to the
 *     `apply` frame arriving at the agent, and from the agent's `applied`+`health` answer to the
 *     project reading ACTIVE_HEALTHY through the API.
 * Loopback only; every phase is bounded.
 *
 * Usage: npm run bench:fanin -- --agents 1000,5000,10000 --projects 1000 --steady 30 --heartbeat 15
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import pg from "pg";
import { type Enrolled, joinHost, SimAgent } from "./sim-agent.js";
import { ADMIN_DATABASE_URL, adminQuery, api, machineLine, percentile } from "./support.js";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "1000,5000,10000" },
    projects: { type: "string", default: "1000" },
    steady: { type: "string", default: "30" },
    /**
     * Seconds between the last welcome and the steady window (heartbeats already running). A
     * welcome is sent before the hello's inventory and reconcile reads, so the storm's last
     * database work is still queued when the last agent is welcomed; measuring at once would count
     * that tail as heartbeat cost. The control plane's CPU is printed per second through it.
     */
    settle: { type: "string", default: "30" },
    heartbeat: { type: "string", default: "15" },
    /**
     * SUPAMANAGER_HOST_OFFLINE_SECONDS per run, comma-separated (default 45). 20 with a 15 s
     * heartbeat leaves no room for interval writes, so every heartbeat writes: the behaviour
     * before ADR 0034, measured in the same run for comparison.
     */
    offline: { type: "string", default: "45" },
    /**
     * Run the control plane with `--cpu-prof` into this directory; the steady window's offsets
     * from the start of the process are printed, so a profile can be cut to it.
     */
    "cpu-prof": { type: "string" },
  },
});
const offlineGraces = values.offline.split(",").map(Number);
const agentCounts = values.agents.split(",").map(Number);
const projectCount = Number(values.projects);
const steadySeconds = Number(values.steady);
const settleSeconds = Number(values.settle);
const heartbeatSeconds = Number(values.heartbeat);

const ADMIN = { email: "bench-admin@example.test", password: "bench-admin-password" };

/** The machine's 1-minute load average (other sessions share it), read at the end of the window. */
function loadAverage(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}

function procStats(pid: number): { rssMiB: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime
  return { rssMiB: rssKb / 1024, cpuSeconds: ticks / 100 };
}

async function runOnce(agents: number, offlineSeconds: number) {
  const dbName = `supamanager_fanin_${Date.now().toString(36)}`;
  await adminQuery(`create database "${dbName}"`);
  const dbUrl = new URL(ADMIN_DATABASE_URL);
  dbUrl.pathname = `/${dbName}`;
  const prof = values["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", values["cpu-prof"]] : [];
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...prof, "control-plane/dist/entry/node.js"], {
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "production",
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: dbUrl.toString(),
      DATABASE_POOL_MAX: "20",
      SUPAMANAGER_LOG_LEVEL: "warn",
      SUPAMANAGER_JWT_SECRET: "fanin-jwt-secret-0123456789abcdef0123456789",
      SUPAMANAGER_ENCRYPTION_KEY: "cd".repeat(32),
      SUPAMANAGER_RELEASE: "local",
      SUPAMANAGER_ADMIN_EMAIL: ADMIN.email,
      SUPAMANAGER_ADMIN_PASSWORD: ADMIN.password,
      SUPAMANAGER_HEARTBEAT_SECONDS: String(heartbeatSeconds),
      SUPAMANAGER_HOST_OFFLINE_SECONDS: String(offlineSeconds),
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const sims: SimAgent[] = [];
  try {
    const base = await new Promise<string>((resolve, reject) => {
      let buf = "";
      child.stderr.on("data", (d: Buffer) => {
        buf += d.toString();
        const m = /SupaManager is running at (\S+)/.exec(buf);
        if (m?.[1]) resolve(m[1]);
      });
      child.once("exit", (code) => reject(new Error(`control plane exited with ${code}: ${buf}`)));
      setTimeout(() => reject(new Error("control plane did not start in 60 s")), 60_000).unref();
    });
    const session = await api<{ access_token: string }>(base, "/auth/v1/token?grant_type=password", {
      method: "POST",
      body: ADMIN,
    });
    const token = session.access_token;
    // Enrollment (not timed as part of the storm): a join token per 1,000 hosts (the API's
    // maximum uses), N join calls, 50 at a time.
    const credentials: Enrolled[] = [];
    for (let i = 0; i < agents; i += 1000) {
      const uses = Math.min(1000, agents - i);
      const join = await api<{ token: string }>(base, "/platform/fleet/join-tokens", {
        method: "POST",
        token,
        body: { region: "bench-1", uses, expires_in_seconds: 3600 },
      });
      for (let j = 0; j < uses; j += 50) {
        const batch = Array.from({ length: Math.min(50, uses - j) }, (_, k) =>
          joinHost(base, join.token, `sim-${i + j + k}`),
        );
        credentials.push(...(await Promise.all(batch)));
      }
    }

    // Connect storm: all agents at once (bounded by 120 s each).
    SimAgent.retries = 0;
    const stormStart = performance.now();
    sims.push(...(await Promise.all(credentials.map((cred) => SimAgent.connect(base, cred)))));
    const stormSeconds = (performance.now() - stormStart) / 1000;
    const stormRetries = SimAgent.retries;
    const afterStorm = procStats(child.pid as number);

    // Steady state: every agent heartbeats every `heartbeatSeconds`, spread over the interval.
    sims.forEach((sim, i) => {
      sim.startHeartbeats(heartbeatSeconds, Math.floor((i / sims.length) * heartbeatSeconds * 1000));
    });
    // Row updates of `hosts` per heartbeat sent (ADR 0034): PostgreSQL's own counter, a count
    // rather than a timing (its statistics lag by about a second at both ends of the window).
    const hostUpdates = async () => {
      const c = new pg.Client({ connectionString: dbUrl.toString() });
      await c.connect();
      try {
        const { rows } = await c.query<{ n: string }>(
          "select n_tup_upd::text as n from pg_stat_user_tables where relname = 'hosts'",
        );
        return Number(rows[0]?.n ?? 0);
      } finally {
        await c.end();
      }
    };
    // The storm's tail: the control plane's CPU per second until the steady window.
    const settleCpuPercent: number[] = [];
    for (let s = 0, prev = procStats(child.pid as number); s < settleSeconds; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      const cur = procStats(child.pid as number);
      settleCpuPercent.push(Math.round((cur.cpuSeconds - prev.cpuSeconds) * 100));
      prev = cur;
    }
    const updates0 = await hostUpdates();
    const beats0 = SimAgent.heartbeatsSent;
    const steady0 = procStats(child.pid as number);
    const steadyFrom = performance.now() - spawnedAt;
    await new Promise((r) => setTimeout(r, steadySeconds * 1000));
    const steady1 = procStats(child.pid as number);
    const steadyLoad = loadAverage();
    if (prof.length > 0) {
      const window = [steadyFrom, performance.now() - spawnedAt].map((ms) => (ms / 1000).toFixed(1));
      console.log(`steady window: ${window.join("–")} s after the control plane was spawned`);
    }
    const beats1 = SimAgent.heartbeatsSent;
    const hostRowUpdates = (await hostUpdates()) - updates0;
    const steadyCpuPercent = ((steady1.cpuSeconds - steady0.cpuSeconds) / steadySeconds) * 100;

    // Apply latency for `projectCount` projects.
    const org = await api<{ slug: string }>(base, "/platform/organizations", {
      method: "POST",
      token,
      body: { name: "Fan-in", tier: "tier_free" },
    });
    const delivered = new Map<string, number>();
    for (const sim of sims) sim.onApply = (ref, at) => delivered.set(ref, at);
    const createLatencies: number[] = [];
    const started = new Map<string, number>();
    for (let i = 0; i < projectCount; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, projectCount - i) }, async (_, j) => {
          const t0 = performance.now();
          const p = await api<{ ref: string }>(base, "/platform/projects", {
            method: "POST",
            token,
            body: {
              name: `p${i + j}`,
              organization_slug: org.slug,
              db_pass: "bench-db-password-1",
              db_region: "bench-1",
            },
          });
          started.set(p.ref, t0);
        }),
      );
    }
    const deadline = Date.now() + 60_000;
    while (delivered.size < started.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const [ref, t0] of started) {
      const at = delivered.get(ref);
      if (at !== undefined) createLatencies.push(at - t0);
    }
    createLatencies.sort((a, b) => a - b);
    const final = procStats(child.pid as number);
    return {
      agents,
      offlineSeconds,
      stormSeconds,
      stormRetries,
      settleSeconds,
      settleCpuPercent,
      loadAverage: steadyLoad,
      rssAfterStormMiB: afterStorm.rssMiB,
      steadyCpuPercent,
      steadyRssMiB: steady1.rssMiB,
      heartbeatsInWindow: beats1 - beats0,
      hostRowUpdatesPerHeartbeat: hostRowUpdates / Math.max(1, beats1 - beats0),
      heartbeatSeconds,
      projects: started.size,
      appliesDelivered: createLatencies.length,
      createToApplyP50Ms: percentile(createLatencies, 50),
      createToApplyP99Ms: percentile(createLatencies, 99),
      finalRssMiB: final.rssMiB,
    };
  } finally {
    for (const s of sims) s.close();
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1000));
    await adminQuery(`drop database if exists "${dbName}" with (force)`);
  }
}

async function main() {
  const results = [];
  for (const n of agentCounts) {
    for (const offline of offlineGraces) {
      const r = await runOnce(n, offline);
      console.log(JSON.stringify(r));
      results.push(r);
    }
  }
  const machine = machineLine();
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(
    "bench/results/fleet-fanin.json",
    `${JSON.stringify({ date: new Date().toISOString(), machine, results }, null, 2)}\n`,
  );
  console.log(`machine: ${machine}`);
  console.log(
    "| agents | offline grace s | connect storm s | retried connects | RSS after storm MiB | steady CPU % | steady RSS MiB | host row updates per heartbeat | create→apply p50 ms | p99 ms |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.agents} | ${r.offlineSeconds} | ${r.stormSeconds.toFixed(2)} | ${r.stormRetries} | ${r.rssAfterStormMiB.toFixed(0)} | ${r.steadyCpuPercent.toFixed(1)} | ${r.steadyRssMiB.toFixed(0)} | ${r.hostRowUpdatesPerHeartbeat.toFixed(2)} | ${r.createToApplyP50Ms.toFixed(1)} | ${r.createToApplyP99Ms.toFixed(1)} |`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
