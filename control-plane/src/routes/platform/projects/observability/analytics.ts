import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../../deps.js";
import { ApiError, notFound } from "../../../../errors.js";
import { authed } from "../../../../lib/context.js";
import { jsonBody, param, query } from "../../../../lib/validate.js";
import { infraMonitoring } from "../../../../services/analytics/infra-monitoring.js";
import { logsAll } from "../../../../services/analytics/logs.js";
import {
  apiCounts,
  apiRequestsCount,
  authMetrics,
  FUNCTIONS_STATS_MARKER,
  functionCombinedStats,
  functionsLastHourStats,
  projectMetrics,
} from "../../../../services/analytics/usage.js";
import { projectForMember } from "../../../../services/organizations/access.js";
import { RefParam } from "../schemas.js";

/** The ref, once the caller is known to be a member (before any validation: outsiders get 404). */
async function refOf(c: Context<AppEnv>): Promise<string> {
  const ref = param(c, "ref", RefParam, "Project");
  await projectForMember(authed(c), ref, "projects.read");
  return ref;
}

const IsoTime = z
  .string()
  .max(64)
  .refine((s) => !Number.isNaN(Date.parse(s)), "must be an ISO 8601 time");

/** Studio's `{sql, iso_timestamp_start, iso_timestamp_end}` (data/logs/execute-analytics-sql.ts), as query or body. */
const LogsAllParams = z.object({
  sql: z.string().min(1, "sql is required").max(100_000),
  iso_timestamp_start: IsoTime.optional(),
  iso_timestamp_end: IsoTime.optional(),
  // Older Studio builds also send the ref as `project`; the path's ref is the one that counts.
  project: z.string().max(64).optional(),
});

/** GET|POST /platform/projects/:ref/analytics/endpoints/logs.all → `{result: [...]}` from container logs. */
export async function logsAllRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = await refOf(c);
  const p = c.req.method === "GET" ? query(c, LogsAllParams) : await jsonBody(c, LogsAllParams);
  const window = { start: p.iso_timestamp_start, end: p.iso_timestamp_end };
  if (p.sql.includes(FUNCTIONS_STATS_MARKER))
    return c.json(await functionsLastHourStats(authed(c), ref, p.sql, window));
  const answer = await logsAll(authed(c), ref, p.sql, window);
  return c.json(answer);
}

/** GET /platform/projects/:ref/analytics/endpoints/usage.api-counts?interval= (home page request charts). */
export async function apiCountsRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = await refOf(c);
  const q = query(c, z.object({ interval: z.string().max(16).default("1day") }));
  return c.json(await apiCounts(authed(c), ref, q.interval, c.var.deps.clock.now()));
}

/** GET /platform/projects/:ref/analytics/endpoints/usage.api-requests-count → `{result: [{count}]}`. */
export async function apiRequestsCountRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = await refOf(c);
  return c.json(await apiRequestsCount(authed(c), ref));
}

/**
 * GET /platform/projects/:ref/analytics/endpoints/auth.metrics?interval=1day (the Auth overview):
 * the last day against the day before (services/analytics/usage.ts authMetrics).
 */
export async function authMetricsRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = await refOf(c);
  query(
    c,
    z.object({ interval: z.literal("1day", "interval must be 1day (the last day and the day before)").optional() }),
  );
  return c.json(await authMetrics(authed(c), ref, authed(c).deps.clock.now()));
}

/** GET /platform/projects/:ref/analytics/endpoints/project.metrics → rows per service, current and previous window. */
export async function projectMetricsRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = await refOf(c);
  const q = query(
    c,
    z.object({
      iso_timestamp_start: IsoTime,
      iso_timestamp_end: IsoTime,
      interval: z.enum(["1hr", "1day", "7day"]).optional(),
    }),
  );
  const rows = await projectMetrics(authed(c), ref, q.iso_timestamp_start, q.iso_timestamp_end, q.interval);
  return c.json({ result: rows });
}

const Attribute = z.string().regex(/^[a-z0-9_]{1,64}$/, "attributes are metric names such as ram_usage");

/**
 * GET /platform/projects/:ref/infra-monitoring?attributes=…&attributes=…&startDate&endDate&interval
 * (or the older single `attribute=`) → Studio's multi-attribute response.
 */
export async function infraMonitoringRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = await refOf(c);
  const q = query(
    c,
    z.object({
      startDate: IsoTime,
      endDate: IsoTime,
      interval: z.string().max(8).default("1h"),
      databaseIdentifier: z.string().max(64).optional(),
    }),
  );
  const raw = [
    ...(c.req.queries("attributes") ?? []),
    ...(c.req.queries("attributes[]") ?? []),
    ...(c.req.queries("attribute") ?? []),
  ]
    .flatMap((a) => a.split(","))
    .filter((a) => a !== "");
  const attributes = z
    .array(Attribute)
    .min(1, "attributes: name at least one metric")
    .max(32)
    .safeParse([...new Set(raw)]);
  if (!attributes.success) {
    throw new ApiError("validation_failed", attributes.error.issues[0]?.message ?? "attributes are invalid");
  }
  const answer = await infraMonitoring(authed(c), ref, attributes.data, q.interval, c.var.deps.clock.now());
  // The older single-attribute call (`attribute=`) reads the series' metadata at the top level.
  const single = c.req.query("attribute");
  if (single !== undefined && c.req.query("attributes") === undefined) {
    const meta = answer.series[single];
    return c.json({
      data: answer.data.map((d) => ({ period_start: d.period_start, [single]: d.values[single] })),
      ...(meta ?? { format: "", total: 0, totalAverage: 0, yAxisLimit: 0 }),
      ...(answer.errors ? { errors: answer.errors } : {}),
    });
  }
  return c.json(answer);
}

const FunctionStatsQuery = z.object({
  function_id: z.string().min(1, "function_id is required").max(64),
  interval: z.string().min(1, "interval is required").max(16),
});

/**
 * GET /platform/projects/:ref/analytics/endpoints/functions.combined-stats (and the older
 * functions.req-stats), also /v1/projects/:ref/analytics/endpoints/functions.combined-stats:
 * a function's invocations per bucket, from the gateway's access log (services/analytics/usage.ts).
 */
export async function functionCombinedStatsRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = await refOf(c);
  const q = query(c, FunctionStatsQuery);
  return c.json(await functionCombinedStats(authed(c), ref, q.function_id, q.interval, c.var.deps.clock.now()));
}

/**
 * GET /platform/projects/:ref/analytics/endpoints/functions.resource-usage: a function's CPU and
 * memory per bucket. The edge runtime reports no per-function figures we could read, so the
 * answer is no rows (Studio draws an empty chart), never invented values.
 */
export async function functionResourceUsageRoute(c: Context<AppEnv>): Promise<Response> {
  await refOf(c);
  query(c, FunctionStatsQuery);
  return c.json({ result: [] });
}

/**
 * GET /platform/projects/:ref/analytics/log-drains — STUB: SupaManager runs no log drains (the
 * `log_drains` entitlement is off), so the list is empty and Studio's Log Drains page shows its
 * empty state. Creating one falls through to the JSON 404 "not supported": nobody believes logs
 * are being shipped.
 */
export async function logDrainsRoute(c: Context<AppEnv>): Promise<Response> {
  await refOf(c);
  return c.json([]);
}

export const NO_WAREHOUSE_MESSAGE =
  "SupaManager has no log warehouse: a project's logs are read from its containers (the Logs pages); no collections, access tokens or endpoints exist to open.";

/**
 * GET /platform/projects/:ref/analytics/warehouse/{collections,access-tokens,endpoints} — STUB:
 * there is no log warehouse (Logflare's warehouse is a hosted feature), so each list is empty;
 * members only. Creating any of them falls through to the catch-all 404, so nobody believes a
 * collection or token was made.
 */
export async function warehouseListRoute(c: Context<AppEnv>): Promise<Response> {
  await refOf(c);
  return c.json([]);
}

/**
 * Any other warehouse read (the tenant, one collection or its schema, a query): members get a 404
 * saying there is no warehouse; non-members the usual project 404.
 */
export async function noWarehouseRoute(c: Context<AppEnv>): Promise<Response> {
  await refOf(c);
  throw notFound(NO_WAREHOUSE_MESSAGE);
}
