import type { DockerLogLine, Rpc } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { edgeFunctions } from "../../../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../../test-support/harness.js";
import { expectMatchesOperation } from "../../../../test-support/openapi.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../../test-support/projects-factory.js";

/**
 * Studio's Logs and Observability calls against the real control plane and a fake agent that
 * answers the docker-logs rpc with container log lines and postgres-meta with statistics. The
 * SQL strings are the ones Studio generates (apps/studio/components/interfaces/Settings/Logs/
 * Logs.utils.ts: genDefaultQuery, genCountQuery, genChartQuery, genSingleLogQuery; IS_PLATFORM).
 * test/data-plane/observability.test.ts reads the real containers through a real agent.
 */

let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let stranger: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
let rpcs: Rpc[];
/** Container log lines the fake agent holds, per Compose service. */
let lines: Record<string, DockerLogLine[]>;

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0); // the harness's ManualClock
const at = (minutesAgo: number, extra = "123456789") =>
  new Date(NOW - minutesAgo * 60_000).toISOString().replace(/\.\d{3}Z$/, `.${extra}Z`);

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  lines = {
    db: [
      {
        service: "db",
        stream: "stderr",
        text: "2026-11-25 11:50:00.000 UTC [1] LOG:  database system is ready to accept connections",
        timestamp: at(10),
      },
      {
        service: "db",
        stream: "stderr",
        text: '2026-11-25 11:55:00.000 UTC [42] ERROR:  relation "nope" does not exist',
        timestamp: at(5),
      },
      {
        service: "db",
        stream: "stderr",
        text: "2026-11-25 11:58:00.000 UTC [43] WARNING:  there is no transaction in progress",
        timestamp: at(2),
      },
    ],
    gateway: [
      {
        service: "gateway",
        stream: "stdout",
        text: '127.0.0.1 - - [25/Nov/2026:11:40:00 +0000] "POST /pg/query HTTP/1.1" 201 12 "-" "node"',
        timestamp: at(20),
      },
      {
        service: "gateway",
        stream: "stdout",
        text: '127.0.0.1 - - [25/Nov/2026:11:50:00 +0000] "GET /rest/v1/todos?select=* HTTP/1.1" 200 40 "-" "supabase-js"',
        timestamp: at(10),
      },
      {
        service: "gateway",
        stream: "stdout",
        text: '127.0.0.1 - - [25/Nov/2026:11:55:00 +0000] "POST /auth/v1/token?grant_type=password HTTP/1.1" 400 30 "-" "supabase-js"',
        timestamp: at(5),
      },
      {
        service: "gateway",
        stream: "stdout",
        text: '127.0.0.1 - - [25/Nov/2026:11:59:00 +0000] "GET /rest/v1/boom HTTP/1.1" 502 0 "-" "supabase-js"',
        timestamp: at(1),
      },
    ],
  };
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    if (rpc.service === "docker-stats") {
      const MiB = 1024 * 1024;
      return {
        status: 200,
        body: {
          containers: [
            { service: "db", cpuPercent: 50, memoryBytes: 100 * MiB, memoryLimitBytes: 1024 * MiB },
            { service: "meta", cpuPercent: 30, memoryBytes: 50 * MiB, memoryLimitBytes: 512 * MiB },
          ],
          hostCpus: 2,
        },
      };
    }
    if (rpc.service === "docker-logs") {
      const service = new URLSearchParams(rpc.path.split("?")[1]).get("service") ?? "";
      return { status: 200, body: { lines: lines[service] ?? [] } };
    }
    return {
      status: 201,
      body: [{ pg_stat_database_num_backends: "7", max_db_connections: "100", pg_database_size: "8000000" }],
    };
  };
  ref = (await createProjectViaApi(t, owner, org)).ref;
  await conn.settle();
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  await conn.send({
    type: "health",
    ref,
    services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
  });
});
afterEach(async () => {
  await t.close();
});

type Rows = { result: Record<string, unknown>[] };
const logsUrl = () => `/platform/projects/${ref}/analytics/endpoints/logs.all`;
const getLogs = (sql: string, extra: Record<string, string> = {}, user = owner) =>
  t.request(`${logsUrl()}?${new URLSearchParams({ sql, ...extra })}`, { token: user.token });
const postLogs = (body: Record<string, unknown>, user = owner) =>
  t.request(logsUrl(), { method: "POST", token: user.token, json: body });

const WINDOW = {
  iso_timestamp_start: new Date(NOW - 3600_000).toISOString(),
  iso_timestamp_end: new Date(NOW).toISOString(),
};

// genDefaultQuery('postgres_logs', {}) with IS_PLATFORM, as Studio sends it.
const PG_PREVIEW = `select identifier, postgres_logs.timestamp, id, event_message, parsed.error_severity, parsed.detail, parsed.hint from postgres_logs
  cross join unnest(metadata) as m
  cross join unnest(m.parsed) as parsed
  
  order by timestamp desc
  limit 100
  `;

describe("logs.all: Studio's log pages from the project's container logs", () => {
  it("the postgres logs page: newest first, Logflare's fields, read from the db container", async () => {
    const res = await getLogs(PG_PREVIEW, WINDOW);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as Rows;
    expect(body.result.map((r) => r.error_severity)).toEqual(["WARNING", "ERROR", "LOG"]);
    const first = body.result[0] as Record<string, unknown>;
    expect(first).toMatchObject({
      identifier: ref,
      event_message: expect.stringContaining("no transaction in progress"),
    });
    // Microseconds since the epoch (16 digits), which Studio converts with unixMicroToIsoTimestamp.
    expect(String(first.timestamp)).toMatch(/^\d{16}$/);
    expect(first.timestamp).toBe((NOW - 2 * 60_000) * 1000 + 123_456);
    expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const rpc = rpcs.find((r) => r.service === "docker-logs");
    expect(rpc).toMatchObject({ ref, method: "GET", path: "/logs?tail=1000&service=db" });
  });

  it("POST with the search box's regexp_contains keeps only matching events; ids are stable", async () => {
    const res = await postLogs({
      sql: PG_PREVIEW.replace("\n  \n", "\n  where (regexp_contains(event_message, 'ERROR'))\n"),
      ...WINDOW,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as Rows;
    expect(body.result).toHaveLength(1);
    const again = (await (await getLogs(PG_PREVIEW, WINDOW)).json()) as Rows;
    expect(again.result.map((r) => r.id)).toContain(body.result[0]?.id);
  });

  it("the time window cuts events outside it", async () => {
    const res = await getLogs(PG_PREVIEW, {
      iso_timestamp_start: new Date(NOW - 6 * 60_000).toISOString(),
      iso_timestamp_end: new Date(NOW - 60_000).toISOString(),
    });
    expect(((await res.json()) as Rows).result.map((r) => r.error_severity)).toEqual(["WARNING", "ERROR"]);
  });

  it("the count query answers {count}", async () => {
    const res = await getLogs(
      "SELECT count(*) as count FROM postgres_logs cross join unnest(metadata) as m\n  cross join unnest(m.parsed) as parsed ",
      WINDOW,
    );
    expect(await res.json()).toEqual({ result: [{ count: 3 }] });
  });

  it("the event chart answers ok / warning / error counts per minute, µs timestamps", async () => {
    const chart = `
SELECT
-- log-event-chart
  timestamp_trunc(t.timestamp, minute) as timestamp,
  count(CASE WHEN NOT (parsed.error_severity IN ('ERROR', 'FATAL', 'PANIC') OR parsed.error_severity IN ('WARNING')) THEN 1 END) as ok_count,
  count(CASE WHEN parsed.error_severity IN ('ERROR', 'FATAL', 'PANIC') THEN 1 END) as error_count,
  count(CASE WHEN parsed.error_severity IN ('WARNING') THEN 1 END) as warning_count
FROM
  postgres_logs t
  cross join unnest(metadata) as m
  cross join unnest(m.parsed) as parsed
  where t.timestamp > '2026-11-25T05:00:00.000Z'
GROUP BY
timestamp
ORDER BY
  timestamp ASC
  `;
    const res = await getLogs(chart, WINDOW);
    expect(res.status, await res.clone().text()).toBe(200);
    const minute = (ago: number) => (NOW - ago * 60_000) * 1000;
    expect(((await res.json()) as Rows).result).toEqual([
      { timestamp: minute(10), ok_count: 1, warning_count: 0, error_count: 0 },
      { timestamp: minute(5), ok_count: 0, warning_count: 0, error_count: 1 },
      { timestamp: minute(2), ok_count: 0, warning_count: 1, error_count: 0 },
    ]);
  });

  it("one event by id, with its metadata (the log detail panel)", async () => {
    const list = (await (await getLogs(PG_PREVIEW, WINDOW)).json()) as Rows;
    const id = list.result[1]?.id as string;
    const res = await getLogs(
      `select id, timestamp, event_message, metadata from postgres_logs where id = '${id}' limit 1`,
    );
    const body = (await res.json()) as Rows;
    expect(body.result).toHaveLength(1);
    expect(body.result[0]).toMatchObject({ id, event_message: expect.stringContaining("ERROR") });
    expect(body.result[0]?.metadata).toEqual([expect.objectContaining({ error_severity: "ERROR" })]);
  });

  it("the API gateway page reads the gateway's access log: method, path, status", async () => {
    const edge = `select id, identifier, timestamp, event_message, request.method, request.path, request.search, response.status_code
  from edge_logs
  cross join unnest(metadata) as m
  cross join unnest(m.request) as request
  cross join unnest(m.response) as response
  
  order by timestamp desc
  limit 100
  `;
    const res = await getLogs(edge, WINDOW);
    expect(res.status, await res.clone().text()).toBe(200);
    const rows = ((await res.json()) as Rows).result;
    expect(rows[1]).toMatchObject({
      method: "POST",
      path: "/auth/v1/token",
      search: "?grant_type=password",
      status_code: 400,
    });
    expect(rpcs.find((r) => r.service === "docker-logs")?.path).toBe("/logs?tail=1000&service=gateway");
  });

  it.each([
    ["auth_logs", "Auth \\(GoTrue\\)"],
    ["storage_logs", "Storage"],
    ["function_edge_logs", "Edge Functions \\(edge-runtime\\)"],
    ["realtime_logs", "Realtime"],
    ["postgrest_logs", "Data API \\(PostgREST\\)"],
  ])("%s on the local release → 409 naming the missing service, without an rpc", async (table, label) => {
    const res = await getLogs(
      `select id, ${table}.timestamp, event_message from ${table}\n  \n  order by timestamp desc\n  limit 100\n  `,
      WINDOW,
    );
    expect(res.status).toBe(409);
    const { message } = (await res.json()) as { message: string };
    expect(message).toMatch(new RegExp(`release \\(local\\) does not run the ${label} service`));
    expect(rpcs).toHaveLength(0);
  });

  it.each([
    ["a join of two sources", "select * from edge_logs join postgres_logs using (id) order by timestamp desc limit 10"],
    ["a filter we cannot apply", `${PG_PREVIEW.replace("\n  \n", "\n  where (parsed.error_severity = 'ERROR')\n")}`],
    ["an aggregate of our own", "select count(*) as c, event_message from postgres_logs group by event_message"],
    ["no source at all", "select 1"],
  ])("%s → 400 saying which queries are answered", async (_n, sql) => {
    const res = await getLogs(sql, WINDOW);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/answers the log pages' own queries/);
  });

  it("an invalid search regex → 400 naming it", async () => {
    const res = await getLogs(
      PG_PREVIEW.replace("\n  \n", "\n  where (regexp_contains(event_message, '(unclosed'))\n"),
      WINDOW,
    );
    expect(res.status).toBe(400);
  });

  it("security: no token → 401, another tenant → 404, read_only may read", async () => {
    expect((await t.request(`${logsUrl()}?sql=x`)).status).toBe(401);
    expect((await getLogs(PG_PREVIEW, WINDOW, stranger)).status).toBe(404);
    expect((await getLogs(PG_PREVIEW, WINDOW, readOnly)).status).toBe(200);
  });
});

describe("request counts from the gateway's access log", () => {
  it("usage.api-counts?interval=1hr buckets requests per minute and per API", async () => {
    const res = await t.request(`/platform/projects/${ref}/analytics/endpoints/usage.api-counts?interval=1hr`, {
      token: owner.token,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const iso = (ago: number) => new Date(NOW - ago * 60_000).toISOString();
    const zero = {
      total_rest_requests: 0,
      total_auth_requests: 0,
      total_storage_requests: 0,
      total_realtime_requests: 0,
      total_functions_requests: 0,
    };
    expect(((await res.json()) as Rows).result).toEqual([
      { ...zero, timestamp: iso(10), total_rest_requests: 1 },
      { ...zero, timestamp: iso(5), total_auth_requests: 1 },
      { ...zero, timestamp: iso(1), total_rest_requests: 1 },
    ]);
  });

  it("usage.api-counts with an unknown interval → 400", async () => {
    const res = await t.request(`/platform/projects/${ref}/analytics/endpoints/usage.api-counts?interval=forever`, {
      token: owner.token,
    });
    expect(res.status).toBe(400);
  });

  it("the Edge Functions list's last-hour stats: requests and 5xx per function, from the gateway's /functions/v1 lines", async () => {
    const [hello, other] = await t.deps.database.db
      .insert(edgeFunctions)
      .values(
        ["hello", "other"].map((slug) => ({
          projectRef: ref,
          slug,
          name: slug,
          entrypointPath: "index.ts",
          files: [],
          sha256: "0".repeat(64),
        })),
      )
      .returning();
    const line = (minutesAgo: number, path: string, status: number): DockerLogLine => ({
      service: "gateway",
      stream: "stdout",
      text: `127.0.0.1 - - [25/Nov/2026:11:00:00 +0000] "POST ${path} HTTP/1.1" ${status} 10 "-" "supabase-js"`,
      timestamp: at(minutesAgo),
    });
    lines.gateway?.push(
      line(3, "/functions/v1/hello", 200),
      line(2, "/functions/v1/hello/sub?x=1", 500),
      line(1, "/functions/v1/other", 200),
      line(90, "/functions/v1/hello", 200), // outside the hour
    );
    // edge-functions-last-hour-stats-query.ts, for the two functions the list shows.
    const sql = `
-- edge-functions-last-hour-stats
select
  function_id,
  count(distinct id) as requests_count,
  count(distinct case when response.status_code >= 500 then id end) as server_err_count
from
  function_edge_logs
  cross join unnest(metadata) as m
  cross join unnest(m.response) as response
where
  function_id is not null
  and function_id in ('${hello?.id}')
group by
  function_id
`;
    const res = await postLogs({ sql, ...WINDOW }, readOnly);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as Rows).result).toEqual([
      { function_id: hello?.id, requests_count: 2, server_err_count: 1 },
    ]);
    expect(other?.id).toBeTruthy();
  });

  it("usage.api-requests-count counts every logged request", async () => {
    const res = await t.request(`/platform/projects/${ref}/analytics/endpoints/usage.api-requests-count`, {
      token: owner.token,
    });
    expect(await res.json()).toEqual({ result: [{ count: 4 }] });
  });

  it("project.metrics answers Studio's rows: µs timestamp, service, window, ok/warning/error", async () => {
    const qs = new URLSearchParams({
      iso_timestamp_start: new Date(NOW - 30 * 60_000).toISOString(),
      iso_timestamp_end: new Date(NOW).toISOString(),
      interval: "1hr",
    });
    const res = await t.request(`/platform/projects/${ref}/analytics/endpoints/project.metrics?${qs}`, {
      token: owner.token,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const minute = (ago: number) => (NOW - ago * 60_000) * 1000;
    expect(((await res.json()) as Rows).result).toEqual([
      { timestamp: minute(10), service: "db", time_window: "current", ok_count: 1, warning_count: 0, error_count: 0 },
      { timestamp: minute(5), service: "auth", time_window: "current", ok_count: 0, warning_count: 1, error_count: 0 },
      { timestamp: minute(1), service: "db", time_window: "current", ok_count: 0, warning_count: 0, error_count: 1 },
    ]);
  });
});

describe("a function's detail page: functions.combined-stats (apps/studio/data/analytics/functions-combined-stats-query.ts)", () => {
  const insertFunctions = async () =>
    t.deps.database.db
      .insert(edgeFunctions)
      .values(
        ["hello", "other"].map((slug) => ({
          projectRef: ref,
          slug,
          name: slug,
          entrypointPath: "index.ts",
          files: [],
          sha256: "0".repeat(64),
        })),
      )
      .returning();
  const line = (minutesAgo: number, path: string, status: number): DockerLogLine => ({
    service: "gateway",
    stream: "stdout",
    text: `127.0.0.1 - - [25/Nov/2026:11:00:00 +0000] "POST ${path} HTTP/1.1" ${status} 10 "-" "supabase-js"`,
    timestamp: at(minutesAgo),
  });
  // Studio's query: {function_id, interval} (the overview's 15min/1hr/3hr/1day).
  const statsUrl = (id: string, interval: string, endpoint = "functions.combined-stats", base = "/platform") =>
    `${base}/projects/${ref}/analytics/endpoints/${endpoint}?${new URLSearchParams({ function_id: id, interval })}`;

  it("answers the function's invocations per minute by status class, from the gateway's /functions/v1/<slug> lines", async () => {
    const [hello] = await insertFunctions();
    lines.gateway?.push(
      line(3, "/functions/v1/hello", 200),
      line(3, "/functions/v1/hello/sub?x=1", 302),
      line(2, "/functions/v1/hello", 401),
      line(2, "/functions/v1/hello", 503),
      line(1, "/functions/v1/other", 200), // another function
      line(90, "/functions/v1/hello", 200), // outside the hour
    );
    const res = await t.request(statsUrl(hello?.id ?? "", "1hr"), { token: readOnly.token });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json();
    const minute = (ago: number) => new Date(NOW - ago * 60_000).toISOString();
    expect(body).toEqual({
      result: [
        {
          timestamp: minute(3),
          requests_count: 2,
          success_count: 1,
          redirect_count: 1,
          client_err_count: 0,
          server_err_count: 0,
        },
        {
          timestamp: minute(2),
          requests_count: 2,
          success_count: 0,
          redirect_count: 0,
          client_err_count: 1,
          server_err_count: 1,
        },
      ],
    });
    // The Management API's path answers the same, held to AnalyticsResponse.
    const v1 = await t.request(statsUrl(hello?.id ?? "", "1hr", "functions.combined-stats", "/v1"), {
      token: owner.token,
    });
    expect(v1.status).toBe(200);
    const v1Body = await v1.json();
    expect(v1Body).toEqual(body);
    expectMatchesOperation("GET", "/v1/projects/{ref}/analytics/endpoints/functions.combined-stats", 200, v1Body);
    // The older req-stats call gets the same rows.
    const req = await t.request(statsUrl(hello?.id ?? "", "1hr", "functions.req-stats"), { token: owner.token });
    expect(await req.json()).toEqual(body);
  });

  it("15min counts only the last 15 minutes; no request → no rows, which Studio draws as an empty chart", async () => {
    const [hello] = await insertFunctions();
    lines.gateway?.push(line(20, "/functions/v1/hello", 200));
    const res = await t.request(statsUrl(hello?.id ?? "", "15min"), { token: owner.token });
    expect(await res.json()).toEqual({ result: [] });
  });

  it("functions.resource-usage: no rows (the runtime reports no per-function CPU or memory)", async () => {
    const [hello] = await insertFunctions();
    const res = await t.request(statsUrl(hello?.id ?? "", "1hr", "functions.resource-usage"), { token: owner.token });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: [] });
  });

  it("a wrong interval or function id is 400, another project's function 404, a non-member 404", async () => {
    const [hello] = await insertFunctions();
    const id = hello?.id ?? "";
    expect((await t.request(statsUrl(id, "1week"), { token: owner.token })).status).toBe(400);
    expect((await t.request(statsUrl("hello", "1hr"), { token: owner.token })).status).toBe(400);
    const missing = await t.request(statsUrl("00000000-0000-4000-8000-000000000000", "1hr"), { token: owner.token });
    expect(missing.status).toBe(404);
    expect((await t.request(statsUrl(id, "1hr"), { token: stranger.token })).status).toBe(404);
    expect(
      (
        await t.request(`/platform/projects/${ref}/analytics/endpoints/functions.combined-stats`, {
          token: owner.token,
        })
      ).status,
    ).toBe(400);
  });
});

describe("GET /platform/projects/:ref/analytics/log-drains (apps/studio/data/log-drains/log-drains-query.ts)", () => {
  it("STUB: no log drains, an empty list for members; creating one is not supported; outsiders 404", async () => {
    const url = `/platform/projects/${ref}/analytics/log-drains`;
    const res = await t.request(url, { token: readOnly.token });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([]);
    expect((await t.request(url, { token: stranger.token })).status).toBe(404);
    const create = await t.request(url, { method: "POST", token: owner.token, json: { name: "d", type: "webhook" } });
    expect(create.status).toBe(404);
    expect(((await create.json()) as { message: string }).message).toMatch(/not supported by SupaManager/);
  });
});

describe("GET /platform/projects/:ref/analytics/warehouse/* (platform.d.ts; data/analytics/warehouse-*-query.ts)", () => {
  it.each(["collections", "access-tokens", "endpoints"])(
    "STUB: %s is an empty list for members; outsiders 404; creating one is not supported",
    async (list) => {
      const url = `/platform/projects/${ref}/analytics/warehouse/${list}`;
      const res = await t.request(url, { token: readOnly.token });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual([]);
      expect((await t.request(url, { token: stranger.token })).status).toBe(404);
      const create = await t.request(url, { method: "POST", token: owner.token, json: { name: "c" } });
      expect(create.status).toBe(404);
      expect(((await create.json()) as { message: string }).message).toMatch(/not supported by SupaManager/);
      expect(rpcs).toHaveLength(0);
    },
  );

  it.each(["tenant", "collections/abc/schema", "query?sql=select%201"])(
    "%s: 404 saying there is no log warehouse (members); the plain project 404 to outsiders",
    async (p) => {
      const res = await t.request(`/platform/projects/${ref}/analytics/warehouse/${p}`, { token: readOnly.token });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { message: string }).message).toMatch(/^SupaManager has no log warehouse/);
      const other = await t.request(`/platform/projects/${ref}/analytics/warehouse/${p}`, { token: stranger.token });
      expect(((await other.json()) as { message: string }).message).toBe(`Project ${ref} not found`);
    },
  );
});

describe("GET /platform/projects/:ref/infra-monitoring", () => {
  const url = (qs: string) =>
    `/platform/projects/${ref}/infra-monitoring?${qs}&startDate=2026-11-25T11:00:00Z&endDate=2026-11-25T12:00:00Z&interval=1h`;

  it("measures connections and database size from PostgreSQL; says which attributes it does not measure", async () => {
    const res = await t.request(
      url("attributes=pg_stat_database_num_backends&attributes=pg_database_size&attributes=disk_io_consumption"),
      { token: owner.token },
    );
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({
      data: [
        {
          period_start: "2026-11-25T12:00:00.000Z",
          values: { pg_stat_database_num_backends: "7", pg_database_size: "8000000" },
        },
      ],
      series: {
        pg_stat_database_num_backends: { format: "", total: 7, totalAverage: 7, yAxisLimit: 100 },
        pg_database_size: { format: "bytes", total: 8000000, totalAverage: 8000000, yAxisLimit: 8000000 },
      },
      errors: { disk_io_consumption: { message: expect.stringMatching(/does not measure disk_io_consumption/) } },
    });
    // The SQL goes wherever the pg-meta path sends it (services/pg-meta/target.ts).
    const meta = rpcs.find((r) => r.path.includes("/query"));
    expect(meta).toBeDefined();
    expect((meta as Rpc).body).toMatchObject({ query: expect.stringContaining("pg_stat_database") });
  });

  it("CPU and memory come from one sample of the project's containers, taken by its agent", async () => {
    const res = await t.request(url("attributes=avg_cpu_usage&attributes=max_cpu_usage&attributes=ram_usage"), {
      token: readOnly.token,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    // (50 + 30) % of one CPU on a 2-CPU host = 40 % of the host; 150 MiB of 1536 MiB = 9.77 %.
    expect(await res.json()).toEqual({
      data: [
        {
          period_start: "2026-11-25T12:00:00.000Z",
          values: { avg_cpu_usage: "40", max_cpu_usage: "40", ram_usage: "9.77" },
        },
      ],
      series: {
        avg_cpu_usage: { format: "%", total: 40, totalAverage: 40, yAxisLimit: 100 },
        max_cpu_usage: { format: "%", total: 40, totalAverage: 40, yAxisLimit: 100 },
        ram_usage: { format: "%", total: 9.77, totalAverage: 9.77, yAxisLimit: 100 },
      },
    });
    expect(rpcs.map((r) => [r.service, r.method, r.path])).toEqual([["docker-stats", "GET", "/stats"]]);
  });

  it("an agent without docker-stats → 503 saying the host cannot sample", async () => {
    conn.answerRpc = (rpc) => {
      rpcs.push(rpc);
      return { error: "this agent does not serve container stats", code: "refused" };
    };
    const res = await t.request(url("attributes=ram_usage"), { token: owner.token });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { message: string }).message).toMatch(/does not serve container stats/);
  });

  it("the older single attribute= form answers the single-series shape", async () => {
    const res = await t.request(url("attribute=pg_stat_database_num_backends"), { token: owner.token });
    expect(await res.json()).toEqual({
      data: [{ period_start: "2026-11-25T12:00:00.000Z", pg_stat_database_num_backends: "7" }],
      format: "",
      total: 7,
      totalAverage: 7,
      yAxisLimit: 100,
    });
  });

  it("only unmeasured attributes → errors, and no database query", async () => {
    const res = await t.request(url("attributes=disk_io_budget"), { token: owner.token });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { errors: object }).errors).toHaveProperty("disk_io_budget");
    expect(rpcs).toHaveLength(0);
  });

  it.each([
    ["no attribute", "interval=1h"],
    ["a bad attribute name", "attributes=DROP%20TABLE"],
  ])("%s → 400", async (_n, qs) => {
    expect((await t.request(url(qs), { token: owner.token })).status).toBe(400);
  });

  it("another tenant → 404", async () => {
    expect((await t.request(url("attributes=pg_database_size"), { token: stranger.token })).status).toBe(404);
  });
});
