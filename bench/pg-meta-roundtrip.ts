/**
 * pg-meta round trip (stack issue): the latency of a small query on Studio's path —
 * HTTP → control plane (auth, membership, project + host checks) → agent (rpc frame over its
 * WebSocket) → gateway → postgres-meta → PostgreSQL and back — against a direct HTTP call to the
 * SAME gateway and postgres-meta (the gateway's published port on 127.0.0.1, with the service key),
 * in one run, as a ratio.
 *
 * Sequential requests (one at a time, so this is latency, not throughput), interleaved in blocks
 * so both paths see the same machine noise. Needs Docker, the local images
 * (`npm run images:test`) and PostgreSQL on 127.0.0.1:5432 (or TEST_DATABASE_URL).
 *
 * Usage: npm run bench:pg-meta [-- --requests 1000 --block 50]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { removeProjectLeftovers } from "../test/support/docker.js";
import { REPO_ROOT } from "../test/support/process.js";
import { startBenchFleet } from "./docker-fleet.js";
import { machineLine, percentile } from "./support.js";

const { values } = parseArgs({
  options: { requests: { type: "string", default: "1000" }, block: { type: "string", default: "50" } },
});
const requests = Number(values.requests);
const block = Number(values.block);
const QUERY = "select 1 as one";

/** One timed POST; fails loudly on anything but the expected one-row answer. */
async function timed(url: string, headers: Record<string, string>, expectStatus: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ query: QUERY }) });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== expectStatus || text !== '[{"one":1}]') throw new Error(`${url}: ${res.status} ${text}`);
  return ms;
}

async function main() {
  const fleet = await startBenchFleet("pgmeta", "48000-48999");
  const { url, token, dataDir } = fleet;
  let ref = "";
  const studio: number[] = [];
  const direct: number[] = [];
  try {
    ref = await fleet.createHealthyProject("pg-meta bench", "pgmeta-db-password-1");
    // The same postgres-meta the agent forwards to: its endpoint as the agent recorded it.
    const state = JSON.parse(readFileSync(join(dataDir, "projects", ref, "state.json"), "utf8")) as {
      endpoints: Record<string, string>;
    };
    // postgres-meta is not published (ADR 0023): the agent reaches it through the gateway's /pg/
    // with the project's service-role key, which the stack's env carries.
    const gatewayUrl = state.endpoints.gateway;
    if (!gatewayUrl) throw new Error("the project has no gateway endpoint");
    const env = readFileSync(join(dataDir, "projects", ref, ".env"), "utf8");
    const serviceKey = env.match(/^SERVICE_ROLE_KEY=(.*)$/m)?.[1]?.replace(/^['"]|['"]$/g, "");
    if (!serviceKey) throw new Error("the project's stack has no SERVICE_ROLE_KEY");
    const viaStudio = `${url}/platform/pg-meta/${ref}/query?key=bench`;
    const studioHeaders = { "content-type": "application/json", authorization: `Bearer ${token}` };
    // The same query options the control plane adds (statement timeout), so both do the same work.
    const viaDirect = `${gatewayUrl}/pg/query?statementTimeoutSecs=60&queryTimeoutSecs=65`;
    const directHeaders = { "content-type": "application/json", apikey: serviceKey };

    for (let i = 0; i < 50; i++) {
      await timed(viaStudio, studioHeaders, 201);
      await timed(viaDirect, directHeaders, 200);
    }
    while (studio.length < requests) {
      const n = Math.min(block, requests - studio.length);
      for (let i = 0; i < n; i++) studio.push(await timed(viaStudio, studioHeaders, 201));
      for (let i = 0; i < n; i++) direct.push(await timed(viaDirect, directHeaders, 200));
    }
  } finally {
    await fleet.stop();
    if (ref) await removeProjectLeftovers(ref);
  }
  studio.sort((a, b) => a - b);
  direct.sort((a, b) => a - b);
  const row = (name: string, xs: number[]) => ({
    name,
    p50: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
  });
  const s = row("Studio's path: control plane → agent → postgres-meta", studio);
  const d = row("direct gateway → postgres-meta (same containers)", direct);
  const machine = machineLine();
  const result = {
    date: new Date().toISOString(),
    machine,
    requests,
    query: QUERY,
    studio: s,
    direct: d,
    ratio: { p50: s.p50 / d.p50, p99: s.p99 / d.p99 },
  };
  mkdirSync(join(REPO_ROOT, "bench/results"), { recursive: true });
  writeFileSync(join(REPO_ROOT, "bench/results/pg-meta-roundtrip.json"), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`machine: ${machine}; ${requests} sequential requests per path`);
  console.log("| path | p50 ms | p90 ms | p99 ms |");
  console.log("|---|---|---|---|");
  for (const r of [d, s])
    console.log(`| ${r.name} | ${r.p50.toFixed(2)} | ${r.p90.toFixed(2)} | ${r.p99.toFixed(2)} |`);
  console.log(`| ratio (Studio's path ÷ direct) | ${result.ratio.p50.toFixed(2)} | | ${result.ratio.p99.toFixed(2)} |`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
