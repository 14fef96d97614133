import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet, prerequisites, sleep } from "../fleet/fleet-harness.js";
import { ensureAgentBuilt } from "../support/agent-process.js";

/**
 * Studio's Advisors, Logs and Observability pages end to end on the `local` release: the built
 * control plane, a built host agent on a real Docker engine, a project running real PostgreSQL 15,
 * the real postgres-meta and the nginx gateway. Lints run in that database; logs are that
 * project's container logs; request counts are requests this test sent to its gateway. The
 * requests are the ones Studio sends (see the contract tests in
 * control-plane/src/routes/platform/projects/observability/).
 */

const CI = process.env.CI === "true";
const pre = await prerequisites();
if (!pre.ok && !CI) {
  console.warn(
    `\n!!! SKIPPING the observability end-to-end tests: ${pre.why}. Run \`bash .ci/start-docker && npm run images:test\`.\n`,
  );
}

// Its own loopback address and port range: other end-to-end files run beside this one on the same engine.
const HOST = { agent: "obs-host", region: "obs-1", bind: "127.0.0.16" };
/** Appears in a failing statement only: it must come back from the postgres logs. */
const MARKER = "obs_marker_7c1d";

const fleet = new Fleet();
let ref = "";
let gateway = "";
const started = new Date(Date.now() - 60_000).toISOString();

const sql = (query: string) => fleet.api<unknown>("POST", `/platform/pg-meta/${ref}/query?key=e2e`, { query });
type Rows = { result: Record<string, unknown>[] };
const logs = (body: Record<string, unknown>) =>
  fleet.api<Rows>("POST", `/platform/projects/${ref}/analytics/endpoints/logs.all`, {
    iso_timestamp_start: started,
    iso_timestamp_end: new Date(Date.now() + 60_000).toISOString(),
    ...body,
  });

/** Poll `fn` until `ok` holds (container logs reach Docker a moment after the event). */
async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T = await fn();
  while (!ok(last) && Date.now() < end) {
    await sleep(500);
    last = await fn();
  }
  if (!ok(last))
    throw new Error(`${what}: not seen within ${ms} ms; last answer ${JSON.stringify(last).slice(0, 2000)}`);
  return last;
}

describe.skipIf(!pre.ok && !CI)("Advisors, Logs and Observability through the agent (local release)", () => {
  beforeAll(async () => {
    if (!pre.ok) throw new Error(`CI=true and the observability end-to-end tests cannot run: ${pre.why}`);
    ensureAgentBuilt();
    await fleet.start();
    await fleet.stopControlPlane();
    await fleet.startControlPlane({ SUPAMANAGER_PORT_RANGE: "25600-25799" });
    await fleet.enroll(HOST.agent, HOST.region, HOST.bind);
    await fleet.waitForHost(HOST.agent, (h) => h.status === "online", 30_000);
    const project = await fleet.createProject("observability", HOST.region, "observability-db-password-1", "small");
    ref = project.ref;
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 150_000);
    const settings = await fleet.api<{ app_config: { endpoint: string; protocol: string } }>(
      "GET",
      `/platform/projects/${ref}/settings`,
    );
    expect(settings.status, settings.text).toBe(200);
    gateway = `${settings.body.app_config.protocol}://${settings.body.app_config.endpoint}`;
  }, 300_000);

  afterAll(async () => {
    const errors = await fleet.cleanup();
    if (errors.length > 0) console.warn(`observability cleanup problems:\n${errors.join("\n")}`);
  }, 180_000);

  it("Advisors: the lints find what is wrong in the project's real database", async () => {
    const setup = await sql(`
      create schema if not exists auth;
      create or replace function auth.uid() returns uuid language sql stable as $$ select null::uuid $$;
      create table public.authors (id bigint primary key);
      create table public.posts (id bigint primary key, author_id bigint references public.authors(id), owner uuid);
      alter table public.posts enable row level security;
      create policy own_posts on public.posts using (auth.uid() = owner);
      create index posts_owner_a on public.posts (owner);
      create index posts_owner_b on public.posts (owner);
    `);
    expect(setup.status, setup.text).toBe(201);
    const res = await fleet.api<{ name: string; level: string; cache_key: string; metadata: object }[]>(
      "GET",
      `/platform/projects/${ref}/run-lints`,
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.map((l) => l.cache_key).sort()).toEqual(
      [
        "auth_rls_initplan_public_posts_own_posts",
        "duplicate_index_public_posts_posts_owner_a_posts_owner_b",
        "rls_disabled_in_public_public_authors",
        "unindexed_foreign_keys_public_posts_posts_author_id_fkey",
      ].sort(),
    );
    expect(res.body.find((l) => l.name === "rls_disabled_in_public")).toMatchObject({
      level: "ERROR",
      metadata: { schema: "public", name: "authors", type: "table" },
    });
  });

  it("Advisors: fixed findings disappear", async () => {
    const fix = await sql(`
      alter table public.authors enable row level security;
      create policy read_authors on public.authors for select using (true);
      create index on public.posts (author_id);
      drop index public.posts_owner_b;
      alter policy own_posts on public.posts using ((select auth.uid()) = owner);
    `);
    expect(fix.status, fix.text).toBe(201);
    const res = await fleet.api<unknown[]>("GET", `/platform/projects/${ref}/run-lints`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual([]);
  });

  it("Logs: a failing statement shows up on the postgres logs page, found by the search box", async () => {
    const failing = await sql(`select * from ${MARKER};`);
    expect(failing.status, failing.text).toBe(400);
    const preview = `select identifier, postgres_logs.timestamp, id, event_message, parsed.error_severity, parsed.detail, parsed.hint from postgres_logs
  cross join unnest(metadata) as m
  cross join unnest(m.parsed) as parsed
  where (regexp_contains(event_message, '${MARKER}'))
  order by timestamp desc
  limit 100
  `;
    const res = await eventually(
      () => logs({ sql: preview }),
      (r) => r.status === 200 && r.body.result.some((e) => e.error_severity === "ERROR"),
      "the failing statement in postgres_logs",
    );
    const event = res.body.result.find((e) => e.error_severity === "ERROR") as Record<string, unknown>;
    expect(event.event_message).toContain(MARKER);
    expect(String(event.timestamp)).toMatch(/^\d{16}$/);
    expect(Math.abs(Number(event.timestamp) / 1000 - Date.now())).toBeLessThan(5 * 60_000);
    // The same event by id (Studio's log detail panel).
    const one = await logs({
      sql: `select id, timestamp, event_message, metadata from postgres_logs where id = '${event.id}' limit 1`,
    });
    expect(one.status, one.text).toBe(200);
    expect(one.body.result).toHaveLength(1);
    expect(one.body.result[0]?.id).toBe(event.id);
  });

  it("Logs and usage: requests sent to the project's gateway are its edge logs and its request counts", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${gateway}/rest/v1/todos?select=id`, { signal: AbortSignal.timeout(5000) });
      expect(r.status).toBe(404); // the stand-in gateway has no PostgREST route
    }
    const edge = `select id, identifier, timestamp, event_message, request.method, request.path, request.search, response.status_code
  from edge_logs
  cross join unnest(metadata) as m
  cross join unnest(m.request) as request
  cross join unnest(m.response) as response
  where (regexp_contains(event_message, 'rest/v1/todos'))
  order by timestamp desc
  limit 100
  `;
    const res = await eventually(
      () => logs({ sql: edge }),
      (r) => r.status === 200 && r.body.result.length >= 3,
      "three requests in edge_logs",
    );
    expect(res.body.result[0]).toMatchObject({
      method: "GET",
      path: "/rest/v1/todos",
      search: "?select=id",
      status_code: 404,
    });

    const counts = await fleet.api<Rows>(
      "GET",
      `/platform/projects/${ref}/analytics/endpoints/usage.api-counts?interval=1hr`,
    );
    expect(counts.status, counts.text).toBe(200);
    const rest = counts.body.result.reduce((n, b) => n + Number(b.total_rest_requests), 0);
    expect(rest).toBe(3);
    const total = await fleet.api<Rows>(
      "GET",
      `/platform/projects/${ref}/analytics/endpoints/usage.api-requests-count`,
    );
    expect(Number(total.body.result[0]?.count)).toBeGreaterThanOrEqual(3);
  });

  it("Logs of a service the local release does not run: 409 naming it", async () => {
    const res = await logs({
      sql: "select id, auth_logs.timestamp, event_message, metadata.level from auth_logs\n  cross join unnest(metadata) as metadata\n  \n  order by timestamp desc\n  limit 100\n  ",
    });
    expect(res.status, res.text).toBe(409);
    expect((res.body as unknown as { message: string }).message).toMatch(
      /release \(local\) does not run the Auth \(GoTrue\) service/,
    );
  });

  it("Observability: connections and database size from PostgreSQL, CPU and memory from the agent's sample", async () => {
    const now = new Date();
    const qs = new URLSearchParams({
      startDate: new Date(now.getTime() - 3600_000).toISOString(),
      endDate: now.toISOString(),
      interval: "1h",
    });
    qs.append("attributes", "pg_stat_database_num_backends");
    qs.append("attributes", "pg_database_size");
    qs.append("attributes", "ram_usage");
    qs.append("attributes", "avg_cpu_usage");
    qs.append("attributes", "disk_io_consumption");
    const res = await fleet.api<{
      data: { values: Record<string, string> }[];
      series: Record<string, { yAxisLimit: number }>;
      errors: Record<string, unknown>;
    }>("GET", `/platform/projects/${ref}/infra-monitoring?${qs}`);
    expect(res.status, res.text).toBe(200);
    const values = res.body.data[0]?.values ?? {};
    expect(Number(values.pg_stat_database_num_backends)).toBeGreaterThanOrEqual(1);
    // An initialised PostgreSQL 15 database is several MB.
    expect(Number(values.pg_database_size)).toBeGreaterThan(5_000_000);
    expect(res.body.series.pg_stat_database_num_backends?.yAxisLimit).toBe(100);
    // The project's three containers use some memory, well under their limits.
    expect(Number(values.ram_usage)).toBeGreaterThan(0);
    expect(Number(values.ram_usage)).toBeLessThan(100);
    expect(Number(values.avg_cpu_usage)).toBeGreaterThanOrEqual(0);
    expect(Object.keys(res.body.errors)).toEqual(["disk_io_consumption"]);
  });

  it("Organization usage: the project's database size measured through its postgres-meta; no Storage or Auth on local", async () => {
    const res = await fleet.api<{
      usage_billing_enabled: boolean;
      usages: { metric: string; usage: number; project_allocations: { ref: string; usage: number }[] }[];
    }>("GET", `/platform/organizations/${fleet.orgSlug}/usage?project_ref=${ref}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.usage_billing_enabled).toBe(false);
    // The local release's database has neither a storage nor an auth schema: only the size is listed.
    expect(res.body.usages.map((u) => u.metric)).toEqual(["DATABASE_SIZE"]);
    const size = res.body.usages[0];
    // In GB: an initialised PostgreSQL 15 database is several MB.
    expect(size?.usage).toBeGreaterThan(0.004);
    expect(size?.usage).toBeLessThan(1);
    expect(size?.project_allocations).toEqual([{ ref, name: "observability", usage: size?.usage }]);
  });

  it("Compute and Disk: disk/util measures the databases and WAL through the real postgres-meta; no provisioned disk", async () => {
    const util = await fleet.api<{ timestamp: string; metrics: Record<string, number> }>(
      "GET",
      `/platform/projects/${ref}/disk/util`,
    );
    expect(util.status, util.text).toBe(200);
    // Several MB of databases, plus the WAL where postgres-meta's role may list it (one 16 MB segment at least).
    expect(util.body.metrics.fs_used_bytes).toBeGreaterThan(5_000_000);
    expect(util.body.metrics.fs_size_bytes).toBe(0);
    expect(util.body.metrics.fs_avail_bytes).toBe(0);
    const disk = await fleet.api<{ message: string }>("GET", `/platform/projects/${ref}/disk`);
    expect(disk.status, disk.text).toBe(404);
    expect(disk.body.message).toMatch(/no disk of its own/);
  });

  it("Auth overview metrics on the local release: 409 naming the missing service", async () => {
    const res = await fleet.api<{ message: string }>(
      "GET",
      `/platform/projects/${ref}/analytics/endpoints/auth.metrics?interval=1day`,
    );
    expect(res.status, res.text).toBe(409);
    expect(res.body.message).toMatch(/release \(local\) does not run the Auth \(GoTrue\) service/);
  });

  it("Realtime settings on the local release: 409 naming the missing service", async () => {
    const res = await fleet.api<{ message: string }>("GET", `/platform/projects/${ref}/config/realtime`);
    expect(res.status, res.text).toBe(409);
    expect(res.body.message).toMatch(/release \(local\) does not run the Realtime service/);
  });
});
