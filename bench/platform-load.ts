/**
 * Load benchmark for the platform API (issue: foundation).
 *
 * Measures, in one run on this machine, authenticated GET /platform/profile and
 * GET /platform/organizations/{slug}/projects with 1,000 projects in the organization, against a
 * bare Hono route served the same way, and reports req/s, p50, p99 and the ratio to the baseline.
 * Loopback only; every phase is bounded in time.
 *
 * Usage: npm run bench:platform [-- --seconds 10 --connections 10 --projects 1000]
 * Needs PostgreSQL on 127.0.0.1:5432 (TEST_DATABASE_URL to change).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import autocannon from "autocannon";
import { joinHost, SimAgent } from "./sim-agent.js";
import { adminQuery, databaseUrl, machineLine, numberOptions, startPlatformServer } from "./support.js";

const {
  seconds,
  connections,
  projects: projectCount,
} = numberOptions({ seconds: "10", connections: "10", projects: "1000" });

const dbName = `supamanager_bench_${Date.now().toString(36)}`;

async function json<T>(res: Response): Promise<T> {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function main() {
  await adminQuery(`create database "${dbName}"`);
  let server: Awaited<ReturnType<typeof startPlatformServer>> | undefined;
  let host: SimAgent | undefined;
  try {
    server = await startPlatformServer(databaseUrl(dbName));
    const { controlPlane, baseline } = server;

    // Setup through the real API: the first account is the instance admin, which enrolls one
    // simulated host (projects need an online host to be placed on).
    const email = "bench@example.test";
    const password = "bench-password-1";
    await json(await post(`${controlPlane}/platform/signup`, { email, password }));
    const session = await json<{ access_token: string }>(
      await post(`${controlPlane}/auth/v1/token?grant_type=password`, { email, password }),
    );
    const auth = { authorization: `Bearer ${session.access_token}` };
    const joinToken = await json<{ token: string }>(
      await post(`${controlPlane}/platform/fleet/join-tokens`, { region: "bench-1" }, auth),
    );
    host = await SimAgent.connect(controlPlane, await joinHost(controlPlane, joinToken.token, "bench-host"));
    host.startHeartbeats(10);
    const org = await json<{ slug: string }>(
      await post(`${controlPlane}/platform/organizations`, { name: "Bench", tier: "tier_free" }, auth),
    );
    const t0 = performance.now();
    for (let i = 0; i < projectCount; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, projectCount - i) }, (_, j) =>
          post(
            `${controlPlane}/platform/projects`,
            {
              name: `project-${String(i + j).padStart(4, "0")}`,
              organization_slug: org.slug,
              db_pass: "a-strong-db-password-1",
            },
            auth,
          ).then(json),
        ),
      );
    }
    const createSeconds = (performance.now() - t0) / 1000;

    const targets = [
      { name: "bare Hono route (baseline)", url: `${baseline}/bare`, headers: {} },
      { name: "GET /platform/profile", url: `${controlPlane}/platform/profile`, headers: auth },
      {
        name: `GET /platform/organizations/{slug}/projects (${projectCount} projects, first page of 100)`,
        url: `${controlPlane}/platform/organizations/${org.slug}/projects?limit=100&offset=0&sort=name_asc`,
        headers: auth,
      },
    ];
    const results = [];
    for (const t of targets) {
      const r = await autocannon({ url: t.url, headers: t.headers, connections, duration: seconds });
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`${t.name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      results.push({
        name: t.name,
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        total: r.requests.total,
      });
    }
    const base = results[0]?.rps ?? 1;
    const machine = machineLine();
    const report = {
      date: new Date().toISOString(),
      machine,
      settings: { seconds, connections, projects: projectCount },
      projectCreateSeconds: createSeconds,
      results: results.map((r) => ({ ...r, ratioToBaseline: r.rps / base })),
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/platform-load.json", `${JSON.stringify(report, null, 2)}\n`);
    console.log(`machine: ${machine}`);
    console.log(`created ${projectCount} projects through the API in ${createSeconds.toFixed(1)} s`);
    console.log("| route | req/s | p50 ms | p99 ms | req/s ÷ baseline |");
    console.log("|---|---|---|---|---|");
    for (const r of report.results) {
      console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.ratioToBaseline.toFixed(3)} |`);
    }
  } finally {
    host?.close();
    await server?.stop();
    await adminQuery(`drop database if exists "${dbName}" with (force)`);
  }
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
