import { and, eq, inArray } from "drizzle-orm";
import { edgeFunctions } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { ApiError, badRequest, conflict, notFound } from "../../errors.js";
import { runServiceQuery } from "../pg-meta/query.js";
import { requireReleaseService } from "../projects/release-services.js";
import { type LogEvent, projectRelease, serviceEvents } from "./logs.js";

/**
 * Request counts for Studio's project home and Observability pages, counted from the access log
 * lines of the project's API gateway (the container logs the agent reads: at most the last
 * DOCKER_LOGS_MAX_TAIL lines). A request is attributed by its path: /rest/v1 (and /graphql/v1)
 * to the Data API, /auth/v1 to Auth, /storage/v1 to Storage, /realtime/v1 to Realtime,
 * /functions/v1 to Edge Functions.
 */

/** `"GET /rest/v1/todos?select=* HTTP/1.1" 200 ` in nginx's and Kong's access log lines. */
const ACCESS = /"([A-Z]+) (\/[^ "?]*)(?:\?[^ "]*)? HTTP\/[\d.]+" (\d{3}) /;

type Area = "rest" | "auth" | "storage" | "realtime" | "functions";
const AREAS: [RegExp, Area][] = [
  [/^\/(rest|graphql)\/v1(\/|$)/, "rest"],
  [/^\/auth\/v1(\/|$)/, "auth"],
  [/^\/storage\/v1(\/|$)/, "storage"],
  [/^\/realtime\/v1(\/|$)/, "realtime"],
  [/^\/functions\/v1(\/|$)/, "functions"],
];

interface Request {
  timestamp: number;
  area: Area | null;
  status: number;
  path: string;
}

async function gatewayRequests(ctx: AuthedContext, ref: string, needFor: string): Promise<Request[]> {
  const release = await projectRelease(ctx, ref);
  const { events } = await serviceEvents(ctx, ref, release, "gateway", needFor);
  return events.flatMap((e: LogEvent) => {
    const m = ACCESS.exec(e.event_message);
    if (!m) return [];
    const path = m[2] as string;
    const area = AREAS.find(([re]) => re.test(path))?.[1] ?? null;
    return [{ timestamp: e.timestamp, status: Number(m[3]), area, path }];
  });
}

/** Studio's api-counts intervals (old and new spellings) → the window they cover and the bucket size. */
const INTERVALS: Record<string, { windowMinutes: number; bucket: "minute" | "hour" | "day" }> = {
  minutely: { windowMinutes: 60, bucket: "minute" },
  hourly: { windowMinutes: 24 * 60, bucket: "hour" },
  daily: { windowMinutes: 7 * 24 * 60, bucket: "day" },
  "15min": { windowMinutes: 15, bucket: "minute" },
  "30min": { windowMinutes: 30, bucket: "minute" },
  "1hr": { windowMinutes: 60, bucket: "minute" },
  "3hr": { windowMinutes: 180, bucket: "hour" },
  "1day": { windowMinutes: 24 * 60, bucket: "hour" },
  "3day": { windowMinutes: 3 * 24 * 60, bucket: "day" },
  "7day": { windowMinutes: 7 * 24 * 60, bucket: "day" },
};
const BUCKET_US = { minute: 60e6, hour: 3600e6, day: 86_400e6 } as const;

/** GET …/analytics/endpoints/usage.api-counts?interval= → `{result: [{timestamp, total_*_requests}]}`. */
export async function apiCounts(ctx: AuthedContext, ref: string, interval: string, nowMs: number) {
  const spec = INTERVALS[interval];
  if (!spec) throw badRequest(`interval must be one of ${Object.keys(INTERVALS).join(", ")}`);
  const requests = await gatewayRequests(ctx, ref, "request counts");
  const since = (nowMs - spec.windowMinutes * 60_000) * 1000;
  const size = BUCKET_US[spec.bucket];
  const buckets = new Map<number, Record<Area, number>>();
  for (const r of requests) {
    if (r.timestamp < since || r.area === null) continue;
    const t = Math.floor(r.timestamp / size) * size;
    const b = buckets.get(t) ?? { rest: 0, auth: 0, storage: 0, realtime: 0, functions: 0 };
    b[r.area]++;
    buckets.set(t, b);
  }
  const result = [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([t, b]) => ({
      timestamp: new Date(t / 1000).toISOString(),
      total_rest_requests: b.rest,
      total_auth_requests: b.auth,
      total_storage_requests: b.storage,
      total_realtime_requests: b.realtime,
      total_functions_requests: b.functions,
    }));
  return { result };
}

/** GET …/analytics/endpoints/usage.api-requests-count → `{result: [{count}]}` (every request the gateway logged). */
export async function apiRequestsCount(ctx: AuthedContext, ref: string) {
  const requests = await gatewayRequests(ctx, ref, "request counts");
  return { result: [{ count: requests.length }] };
}

/** project.metrics' service names (apps/studio/data/analytics/project-metrics-query.ts). */
const METRIC_SERVICE: Record<Area, "db" | "auth" | "storage" | "realtime" | "functions"> = {
  rest: "db",
  auth: "auth",
  storage: "storage",
  realtime: "realtime",
  functions: "functions",
};

/**
 * GET …/analytics/endpoints/project.metrics?iso_timestamp_start&iso_timestamp_end&interval → rows of
 * `{timestamp (µs), service, time_window: current|previous, ok_count, warning_count, error_count}`:
 * the gateway's requests per service and bucket, for the window and the one before it.
 */
export async function projectMetrics(ctx: AuthedContext, ref: string, start: string, end: string, interval?: string) {
  const from = Date.parse(start);
  const to = Date.parse(end);
  if (Number.isNaN(from) || Number.isNaN(to) || to <= from) {
    throw badRequest("iso_timestamp_start and iso_timestamp_end must be ISO 8601 times, start before end");
  }
  const size = interval === "7day" ? BUCKET_US.day : interval === "1day" ? BUCKET_US.hour : BUCKET_US.minute;
  const span = (to - from) * 1000;
  const requests = await gatewayRequests(ctx, ref, "request metrics");
  const rows = new Map<
    string,
    {
      timestamp: number;
      service: string;
      time_window: string;
      ok_count: number;
      warning_count: number;
      error_count: number;
    }
  >();
  for (const r of requests) {
    if (r.area === null) continue;
    const window =
      r.timestamp >= from * 1000 && r.timestamp <= to * 1000
        ? "current"
        : r.timestamp >= from * 1000 - span && r.timestamp < from * 1000
          ? "previous"
          : null;
    if (window === null) continue;
    const t = Math.floor(r.timestamp / size) * size;
    const service = METRIC_SERVICE[r.area];
    const key = `${t}|${service}|${window}`;
    const row = rows.get(key) ?? {
      timestamp: t,
      service,
      time_window: window,
      ok_count: 0,
      warning_count: 0,
      error_count: 0,
    };
    if (r.status >= 500) row.error_count++;
    else if (r.status >= 400) row.warning_count++;
    else row.ok_count++;
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => a.timestamp - b.timestamp);
}

/** The marker of Studio's Edge Functions list query (edge-functions-last-hour-stats-query.ts). */
export const FUNCTIONS_STATS_MARKER = "-- edge-functions-last-hour-stats";

/**
 * logs.all with Studio's Edge Functions list query (`-- edge-functions-last-hour-stats`, per
 * function_id: requests_count, server_err_count, optionally `function_id in ('…', …)`) →
 * `{result: [{function_id, requests_count, server_err_count}]}`, counted from the gateway's
 * access log lines under `/functions/v1/<slug>` in the window, each slug mapped to its function's id.
 */
export async function functionsLastHourStats(
  ctx: AuthedContext,
  ref: string,
  sql: string,
  window: { start?: string | undefined; end?: string | undefined },
) {
  const filter = /function_id\s+in\s*\(([^)]*)\)/i.exec(sql);
  const ids = filter ? [...(filter[1] ?? "").matchAll(/'([^']{1,64})'/g)].map((m) => m[1] as string) : null;
  const rows = await ctx.db
    .select({ id: edgeFunctions.id, slug: edgeFunctions.slug })
    .from(edgeFunctions)
    .where(
      and(
        eq(edgeFunctions.projectRef, ref),
        ...(ids !== null
          ? [
              inArray(
                edgeFunctions.id,
                ids.filter((i) => /^[0-9a-f-]{36}$/.test(i)),
              ),
            ]
          : []),
      ),
    );
  if (rows.length === 0) return { result: [] };
  const bySlug = new Map(rows.map((r) => [r.slug, r.id]));
  const from = window.start !== undefined ? Date.parse(window.start) * 1000 : Number.NEGATIVE_INFINITY;
  const to = window.end !== undefined ? Date.parse(window.end) * 1000 : Number.POSITIVE_INFINITY;
  const counts = new Map<string, { requests: number; serverErrors: number }>();
  for (const r of await gatewayRequests(ctx, ref, "Edge Functions statistics")) {
    if (r.area !== "functions" || r.timestamp < from || r.timestamp > to) continue;
    const id = bySlug.get(r.path.split("/")[3] ?? "");
    if (id === undefined) continue;
    const c = counts.get(id) ?? { requests: 0, serverErrors: 0 };
    c.requests++;
    if (r.status >= 500) c.serverErrors++;
    counts.set(id, c);
  }
  return {
    result: [...counts].map(([function_id, c]) => ({
      function_id,
      requests_count: c.requests,
      server_err_count: c.serverErrors,
    })),
  };
}

/** The function detail page's intervals (functions.combined-stats: 15min, 1hr, 3hr, 1day) → window and bucket. */
const FUNCTION_INTERVALS: Record<string, { windowMinutes: number; bucket: "minute" | "hour" }> = {
  "15min": { windowMinutes: 15, bucket: "minute" },
  "1hr": { windowMinutes: 60, bucket: "minute" },
  "3hr": { windowMinutes: 180, bucket: "hour" },
  "1day": { windowMinutes: 24 * 60, bucket: "hour" },
};

/** One bucket of a function's invocations, in the columns Studio's charts read. */
export interface FunctionStatsRow {
  timestamp: string;
  requests_count: number;
  success_count: number;
  redirect_count: number;
  client_err_count: number;
  server_err_count: number;
}

/**
 * GET …/analytics/endpoints/functions.combined-stats?function_id&interval (the function's detail
 * page; also functions.req-stats) → `{result: [{timestamp (ISO), requests_count, success_count,
 * redirect_count, client_err_count, server_err_count}]}`: the gateway's access-log lines under
 * `/functions/v1/<slug>` in the window, per bucket, by status class. Execution time, CPU and
 * memory are not measured (no per-invocation figures leave the edge runtime), so those columns
 * are absent and Studio draws them empty. A function of another project is a 404.
 */
export async function functionCombinedStats(
  ctx: AuthedContext,
  ref: string,
  functionId: string,
  interval: string,
  nowMs: number,
): Promise<{ result: FunctionStatsRow[] }> {
  const spec = FUNCTION_INTERVALS[interval];
  if (!spec) throw badRequest(`interval must be one of ${Object.keys(FUNCTION_INTERVALS).join(", ")}`);
  if (!/^[0-9a-f-]{36}$/.test(functionId))
    throw badRequest("function_id must be the id of one of the project's functions");
  const [fn] = await ctx.db
    .select({ slug: edgeFunctions.slug })
    .from(edgeFunctions)
    .where(and(eq(edgeFunctions.projectRef, ref), eq(edgeFunctions.id, functionId)))
    .limit(1);
  if (!fn) throw notFound(`Function ${functionId} not found in project ${ref}`);
  const since = (nowMs - spec.windowMinutes * 60_000) * 1000;
  const size = BUCKET_US[spec.bucket];
  const buckets = new Map<number, FunctionStatsRow>();
  for (const r of await gatewayRequests(ctx, ref, "Edge Functions statistics")) {
    if (r.area !== "functions" || r.timestamp < since || r.path.split("/")[3] !== fn.slug) continue;
    const t = Math.floor(r.timestamp / size) * size;
    const b = buckets.get(t) ?? {
      timestamp: new Date(t / 1000).toISOString(),
      requests_count: 0,
      success_count: 0,
      redirect_count: 0,
      client_err_count: 0,
      server_err_count: 0,
    };
    b.requests_count++;
    if (r.status >= 500) b.server_err_count++;
    else if (r.status >= 400) b.client_err_count++;
    else if (r.status >= 300) b.redirect_count++;
    else b.success_count++;
    buckets.set(t, b);
  }
  return { result: [...buckets.entries()].sort(([a], [b]) => a - b).map(([, b]) => b) };
}

/** The Auth overview's periods: the last day and the day before it (Studio asks `interval=1day`). */
const AUTH_PERIOD_MS = 86_400_000;

/**
 * Sign-ins and sign-ups of the two periods, from Auth's own table (our fixed SQL; the bounds are
 * ISO times we format). Users whose last sign-in falls in a period are its active users: token
 * refreshes are not recorded there, so this is a lower bound, as on the usage page.
 */
export function authUsersSql(nowMs: number): string {
  const t = (ms: number) => `'${new Date(ms).toISOString()}'::timestamptz`;
  const [now, dayAgo, twoDaysAgo] = [t(nowMs), t(nowMs - AUTH_PERIOD_MS), t(nowMs - 2 * AUTH_PERIOD_MS)];
  return `select
  count(*) filter (where u.last_sign_in_at > ${dayAgo} and u.last_sign_in_at <= ${now})::bigint as current_active_users,
  count(*) filter (where u.last_sign_in_at > ${twoDaysAgo} and u.last_sign_in_at <= ${dayAgo})::bigint as previous_active_users,
  count(*) filter (where u.created_at > ${dayAgo} and u.created_at <= ${now})::bigint as current_sign_up_count,
  count(*) filter (where u.created_at > ${twoDaysAgo} and u.created_at <= ${dayAgo})::bigint as previous_sign_up_count
from auth.users u;`;
}

export interface AuthMetricsRow {
  period: "current" | "previous";
  active_users: number;
  api_error_requests: number;
  api_total_requests: number;
  auth_total_errors: number;
  auth_total_requests: number;
  password_reset_requests: number;
  sign_up_count: number;
}

/**
 * GET …/analytics/endpoints/auth.metrics?interval=1day (apps/studio/data/auth/auth-overview-query.ts,
 * checked against RawAuthMetricsResponseSchema) → `{result: [{period: current|previous, …}], error: null}`.
 * Active users and sign-ups from `auth.users`; requests, errors (status 400 and up) and password
 * resets (`/auth/v1/recover`) from the gateway's access log, recent lines only (as the home page's
 * counts), so the previous day may be undercounted. A release without Auth: 409 naming it.
 */
export async function authMetrics(ctx: AuthedContext, ref: string, nowMs: number) {
  const release = await projectRelease(ctx, ref);
  requireReleaseService(release, "auth", "the Auth overview's metrics");
  const answer = await runServiceQuery(ctx, ref, authUsersSql(nowMs));
  if (!answer.ok) {
    const message = typeof answer.error.message === "string" ? answer.error.message : "unknown error";
    if (answer.error.code === "42P01" || /relation "auth\.users" does not exist/.test(message)) {
      throw conflict("The project's Auth has not created its tables yet: try again once its auth service is healthy");
    }
    throw new ApiError("bad_gateway", `The project's Auth users could not be counted: ${message}`);
  }
  const users = ((answer.rows as Record<string, unknown>[])[0] ?? {}) as Record<string, unknown>;
  const n = (v: unknown) => (typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : 0);
  const requests = await gatewayRequests(ctx, ref, "the Auth overview's metrics");
  const nowUs = nowMs * 1000;
  const periodUs = AUTH_PERIOD_MS * 1000;
  const row = (period: "current" | "previous"): AuthMetricsRow => {
    const end = period === "current" ? nowUs : nowUs - periodUs;
    const inPeriod = requests.filter((r) => r.timestamp > end - periodUs && r.timestamp <= end);
    const auth = inPeriod.filter((r) => r.area === "auth");
    return {
      period,
      active_users: n(users[`${period}_active_users`]),
      api_error_requests: inPeriod.filter((r) => r.status >= 400).length,
      api_total_requests: inPeriod.length,
      auth_total_errors: auth.filter((r) => r.status >= 400).length,
      auth_total_requests: auth.length,
      password_reset_requests: auth.filter((r) => /^\/auth\/v1\/recover\/?$/.test(r.path)).length,
      sign_up_count: n(users[`${period}_sign_up_count`]),
    };
  };
  return { result: [row("current"), row("previous")], error: null };
}
