/**
 * Workers vs Node (issue "Edge and scale-out"): the same authenticated route on the Node entry
 * and on the Worker in local workerd (Miniflare, the bundle `wrangler deploy` builds), on the
 * same PostgreSQL database — the Worker through the Neon driver and a local WebSocket-to-TCP
 * proxy, as on Neon. One run, both targets alternately, reported as a ratio; plus the cost
 * model of the Workers deployment per 1,000 hosts (docs/deploy-cloudflare.md).
 *
 * Usage: npm run bench:workers [-- --seconds 10 --connections 10 --rounds 2]
 * Needs PostgreSQL on 127.0.0.1:5432 (TEST_DATABASE_URL to change). Loopback only.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import autocannon from "autocannon";
import { startNeonProxy } from "../test/support/neon-proxy.js";
import { bundleWorker, removeBundle } from "../test/support/worker-bundle.js";
import { startLocalWorker } from "../test/support/worker-runtime.js";
import {
  adminQuery,
  api,
  BENCH_SECRETS,
  databaseUrl,
  machineLine,
  median,
  numberOptions,
  startPlatformServer,
} from "./support.js";

const { seconds, connections, rounds } = numberOptions({ seconds: "10", connections: "10", rounds: "2" });

/** Defaults of docs/configuration.md, the inputs of the cost model. */
const HEARTBEAT_SECONDS = 15;
const OFFLINE_SECONDS = 45;
const STALE_SWEEP_SECONDS = 300;
const HOSTS = 1000;
const MONTH_SECONDS = 30 * 24 * 3600;

interface Run {
  target: string;
  route: string;
  rps: number;
  p50: number;
  p99: number;
  total: number;
}

async function load(target: string, route: string, url: string, headers: Record<string, string>): Promise<Run> {
  const r = await autocannon({ url, headers, connections, duration: seconds });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${target} ${route}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { target, route, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total };
}

/** Requests per month and per 1,000 hosts, with the platform's billing ratios. */
function costModel() {
  const heartbeatsPerHost = MONTH_SECONDS / HEARTBEAT_SECONDS;
  const alarmsPerHost = MONTH_SECONDS / Math.max(OFFLINE_SECONDS, STALE_SWEEP_SECONDS);
  const perHost = {
    heartbeatMessages: heartbeatsPerHost,
    // Incoming WebSocket messages to a Durable Object are billed 20:1.
    heartbeatBilledRequests: heartbeatsPerHost / 20,
    // Alarm invocations are billed 1:1.
    alarmBilledRequests: alarmsPerHost,
  };
  const fleet = {
    hosts: HOSTS,
    heartbeatMessages: perHost.heartbeatMessages * HOSTS,
    billedDurableObjectRequests: (perHost.heartbeatBilledRequests + perHost.alarmBilledRequests) * HOSTS,
  };
  return { settings: { HEARTBEAT_SECONDS, OFFLINE_SECONDS, STALE_SWEEP_SECONDS, MONTH_SECONDS }, perHost, fleet };
}

async function main() {
  const dbName = `supamanager_bench_${Date.now().toString(36)}`;
  const dbUrl = databaseUrl(dbName);
  await adminQuery(`create database "${dbName}"`);
  const proxy = await startNeonProxy();
  let server: Awaited<ReturnType<typeof startPlatformServer>> | undefined;
  let worker: Awaited<ReturnType<typeof startLocalWorker>> | undefined;
  let bundle: string | undefined;
  try {
    // The Node entry migrates the database at start (bootstrap); the Worker never does.
    server = await startPlatformServer(dbUrl);
    const node = server.controlPlane;
    const bundleStarted = performance.now();
    bundle = await bundleWorker();
    const bundleSeconds = (performance.now() - bundleStarted) / 1000;
    worker = await startLocalWorker(bundle, {
      ...BENCH_SECRETS,
      NODE_ENV: "production",
      DATABASE_URL: dbUrl,
      SUPAMANAGER_NEON_WS_PROXY: proxy.wsProxy,
      SUPAMANAGER_NEON_INSECURE: "true",
      SUPAMANAGER_LOG_LEVEL: "silent",
    });

    const email = "bench@example.test";
    const password = "bench-password-1";
    await api(node, "/platform/signup", { method: "POST", body: { email, password } });
    // Sessions live in Postgres and both sign with the same secret: one token serves both.
    const { access_token: token } = await api<{ access_token: string }>(
      worker.url,
      "/auth/v1/token?grant_type=password",
      { method: "POST", body: { email, password } },
    );
    const auth = { authorization: `Bearer ${token}` };
    // Warm both (the Worker's first request builds its deps; Node's first query fills the pool).
    for (const base of [node, worker.url]) await api(base, "/platform/profile", { token });

    const runs: Run[] = [];
    let workerConnections = 0;
    let workerRequests = 0;
    for (let round = 0; round < rounds; round++) {
      runs.push(await load("node", "GET /platform/profile", `${node}/platform/profile`, auth));
      const before = proxy.connections;
      const w = await load("workers", "GET /platform/profile", `${worker.url}/platform/profile`, auth);
      workerConnections += proxy.connections - before;
      workerRequests += w.total;
      runs.push(w);
    }
    const of = (target: string) => runs.filter((r) => r.target === target);
    const summary = (target: string) => ({
      target,
      rps: median(of(target).map((r) => r.rps)),
      p50: median(of(target).map((r) => r.p50)),
      p99: median(of(target).map((r) => r.p99)),
    });
    const nodeSummary = summary("node");
    const workersSummary = summary("workers");
    const report = {
      date: new Date().toISOString(),
      machine: machineLine(),
      settings: { seconds, connections, rounds },
      bundleSeconds,
      runs,
      node: nodeSummary,
      workers: workersSummary,
      ratio: {
        rpsWorkersOverNode: workersSummary.rps / nodeSummary.rps,
        p99WorkersOverNode: workersSummary.p99 / nodeSummary.p99,
      },
      // One Neon pool per request: database connections opened per Worker request.
      workerDatabaseConnectionsPerRequest: workerConnections / Math.max(1, workerRequests),
      costModel: costModel(),
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/workers-vs-node.json", `${JSON.stringify(report, null, 2)}\n`);
    console.log(`machine: ${report.machine}`);
    console.log("| target | round | req/s | p50 ms | p99 ms |");
    console.log("|---|---|---|---|---|");
    runs.forEach((r, i) => {
      console.log(`| ${r.target} | ${Math.floor(i / 2) + 1} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} |`);
    });
    console.log(
      `median: workers/node req/s = ${report.ratio.rpsWorkersOverNode.toFixed(3)}, p99 ratio = ${report.ratio.p99WorkersOverNode.toFixed(2)}`,
    );
    console.log(`database connections per Worker request: ${report.workerDatabaseConnectionsPerRequest.toFixed(2)}`);
    console.log(`cost model: ${JSON.stringify(report.costModel)}`);
  } finally {
    await worker?.dispose();
    if (bundle) await removeBundle(bundle);
    await server?.stop();
    await proxy.close();
    await adminQuery(`drop database if exists "${dbName}" with (force)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
