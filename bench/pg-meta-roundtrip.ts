/**
 * pg-meta round trip (stack issue): the latency of a small query on Studio's path —
 * HTTP → control plane (auth, membership, project + host checks) → agent (rpc frame over its
 * WebSocket) → postgres-meta → PostgreSQL and back — against a direct HTTP call to the SAME
 * postgres-meta container (its published port on 127.0.0.1), in one run, as a ratio.
 *
 * Sequential requests (one at a time, so this is latency, not throughput), interleaved in blocks
 * so both paths see the same machine noise. Needs Docker, the local images
 * (`npm run images:test`) and PostgreSQL on 127.0.0.1:5432 (or TEST_DATABASE_URL).
 *
 * Usage: npm run bench:pg-meta [-- --requests 1000 --block 50]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureAgentBuilt, joinAgent, runAgent } from "../test/support/agent-process.js";
import { removeProjectLeftovers } from "../test/support/docker.js";
import { ensureBuilt, REPO_ROOT, startEntry } from "../test/support/process.js";
import { ADMIN_DATABASE_URL, adminQuery, api, machineLine, percentile, until } from "./support.js";

const { values } = parseArgs({
  options: { requests: { type: "string", default: "1000" }, block: { type: "string", default: "50" } },
});
const requests = Number(values.requests);
const block = Number(values.block);
const ADMIN = { email: "pgmeta-admin@example.test", password: "pgmeta-admin-password" };
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
  ensureBuilt();
  ensureAgentBuilt();
  const dbName = `supamanager_pgmeta_${Date.now().toString(36)}`;
  await adminQuery(`create database "${dbName}"`);
  const dbUrl = new URL(ADMIN_DATABASE_URL);
  dbUrl.pathname = `/${dbName}`;
  const dataDir = mkdtempSync(join(tmpdir(), "sm-pgmeta-agent-"));
  const cp = await startEntry({
    NODE_ENV: "production",
    DATABASE_URL: dbUrl.toString(),
    SUPAMANAGER_JWT_SECRET: "pgmeta-jwt-secret-0123456789abcdef0123456789",
    SUPAMANAGER_ENCRYPTION_KEY: "a7".repeat(32),
    SUPAMANAGER_ADMIN_EMAIL: ADMIN.email,
    SUPAMANAGER_ADMIN_PASSWORD: ADMIN.password,
    SUPAMANAGER_LOCAL_IMAGES_FILE: join(REPO_ROOT, "images/manifest.local.json"),
    SUPAMANAGER_PORT_RANGE: "48000-48999",
    SUPAMANAGER_LOG_LEVEL: "warn",
  });
  let agent: ReturnType<typeof runAgent> | undefined;
  let ref = "";
  const studio: number[] = [];
  const direct: number[] = [];
  try {
    const { access_token: token } = await api<{ access_token: string }>(cp.url, "/auth/v1/token?grant_type=password", {
      method: "POST",
      body: ADMIN,
    });
    const join_ = await api<{ token: string }>(cp.url, "/platform/fleet/join-tokens", {
      method: "POST",
      token,
      body: { region: "bench-1" },
    });
    const joined = await joinAgent({ url: cp.url, token: join_.token, dataDir });
    if (joined.code !== 0) throw new Error(`agent join failed: ${joined.output}`);
    agent = runAgent(dataDir);
    await until("the host to be online", 30_000, async () => {
      const hosts = await api<{ status: string }[]>(cp.url, "/platform/fleet/hosts", { token });
      return hosts.some((h) => h.status === "online");
    });
    const org = await api<{ slug: string }>(cp.url, "/platform/organizations", {
      method: "POST",
      token,
      body: { name: "pg-meta bench", tier: "tier_free" },
    });
    ({ ref } = await api<{ ref: string }>(cp.url, "/platform/projects", {
      method: "POST",
      token,
      body: {
        name: "pg-meta bench",
        organization_slug: org.slug,
        db_pass: "pgmeta-db-password-1",
        db_region: "bench-1",
      },
    }));
    await until(`${ref} ACTIVE_HEALTHY`, 180_000, async () => {
      const { status } = await api<{ status: string }>(cp.url, `/platform/projects/${ref}/status`, { token });
      if (status === "INIT_FAILED") {
        const detail = await api<{ status_reason?: string }>(cp.url, `/platform/projects/${ref}`, { token });
        throw new Error(`${ref} failed to start: ${detail.status_reason ?? "no reason given"}`);
      }
      return status === "ACTIVE_HEALTHY";
    });
    // The same postgres-meta the agent forwards to: its endpoint as the agent recorded it.
    const state = JSON.parse(readFileSync(join(dataDir, "projects", ref, "state.json"), "utf8")) as {
      endpoints: Record<string, string>;
    };
    const metaUrl = state.endpoints.meta;
    if (!metaUrl) throw new Error("the project has no meta endpoint");
    const viaStudio = `${cp.url}/platform/pg-meta/${ref}/query?key=bench`;
    const studioHeaders = { "content-type": "application/json", authorization: `Bearer ${token}` };
    // The same query options the control plane adds (statement timeout), so both do the same work.
    const viaDirect = `${metaUrl}/query?statementTimeoutSecs=60&queryTimeoutSecs=65`;
    const directHeaders = { "content-type": "application/json" };

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
    await agent?.stop("SIGTERM");
    await cp.stop("SIGTERM");
    if (ref) await removeProjectLeftovers(ref);
    rmSync(dataDir, { recursive: true, force: true });
    await adminQuery(`drop database if exists "${dbName}" with (force)`);
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
  const d = row("direct postgres-meta (same container)", direct);
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
