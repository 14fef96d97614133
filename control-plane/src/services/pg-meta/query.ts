import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { type Action, roleCan } from "../permissions/matrix.js";
import {
  callService,
  type MetaRoute,
  metaHeaders,
  metaRoute,
  READ_ONLY_APPLICATION_PREFIX,
  READ_ONLY_ROLE,
  type ReachableProject,
  reachableProject,
} from "./target.js";

/** Longest a query may run when its statement timeout is lifted (under the protocol's 300 s RPC cap). */
export const UNLIMITED_QUERY_SECONDS = 270;

export interface QueryInput {
  query: string;
  parameters?: unknown[] | undefined;
  disableStatementTimeout?: boolean | undefined;
  /** Run as the read-only database role whatever the member's role (v1 `query/read-only`). */
  readOnly?: boolean | undefined;
}

/** What the route answers: a bare array of rows, or postgres-meta's error object. */
export type QueryAnswer = { ok: true; rows: unknown } | { ok: false; status: number; error: Record<string, unknown> };

/** Fields of postgres-meta's error answer passed on to Studio (PostgreSQL's error fields). */
const ERROR_FIELDS = [
  "code",
  "severity",
  "detail",
  "hint",
  "position",
  "internalPosition",
  "internalQuery",
  "where",
  "schema",
  "table",
  "column",
  "dataType",
  "constraint",
  "file",
  "line",
  "routine",
  "resultSize",
  "maxResultSize",
] as const;

/** The project's postgres-meta route, or 503 when its release has none. */
export function requireMetaRoute(target: ReachableProject) {
  const route = metaRoute(target.release);
  if (!route) {
    throw new ApiError("unavailable", `This project's release (${target.release.name}) has no postgres-meta to reach`);
  }
  return route;
}

/**
 * POST /platform/pg-meta/{ref}/query: run SQL through the project's postgres-meta, over the
 * host agent. A statement timeout applies (SUPAMANAGER_SQL_STATEMENT_TIMEOUT_SECONDS) unless a
 * member who may write lifts it; read_only members run as the read-only database role.
 */
export async function runQuery(
  ctx: AuthedContext,
  ref: string,
  input: QueryInput,
  connectionToken?: string,
): Promise<QueryAnswer> {
  const target = await reachableProject(ctx, ref, "sql.read", connectionToken);
  const route = requireMetaRoute(target);
  const headers = await metaHeaders(ctx, target, route, { readOnly: input.readOnly === true });
  const configured = ctx.deps.config.sql.statementTimeoutSeconds;
  // Lifting the timeout is for members who may write (long migrations); others keep it.
  const unlimited =
    input.disableStatementTimeout === true && input.readOnly !== true && roleCan(target.role, "sql.write");
  // postgres-meta applies statementTimeoutSecs by prefixing `SET statement_timeout=…;` to the SQL,
  // which PostgreSQL refuses in a parameterised (prepared) statement: with parameters only its
  // client-side query timeout bounds the wait (docs/data-plane.md).
  const parameterised = input.parameters !== undefined && input.parameters.length > 0;
  const params = new URLSearchParams(
    unlimited
      ? { queryTimeoutSecs: String(UNLIMITED_QUERY_SECONDS) }
      : parameterised
        ? { queryTimeoutSecs: String(configured) }
        : { statementTimeoutSecs: String(configured), queryTimeoutSecs: String(configured + 5) },
  );
  const timeoutMs = ((unlimited ? UNLIMITED_QUERY_SECONDS : configured + 5) + 5) * 1000;
  // A read-only request's backend must not outlive the request (its SQL may have lifted
  // statement_timeout for its own session): when the database did not answer, end it.
  const readOnlyApp = isReadOnlyConnection(headers) ? headers["x-pg-application-name"] : undefined;
  let result: Awaited<ReturnType<typeof callService>>;
  try {
    result = await callService(ctx, target, {
      ref,
      service: route.service,
      method: "POST",
      path: `${route.prefix}/query?${params}`,
      headers,
      body: { query: input.query, ...(input.parameters !== undefined ? { parameters: input.parameters } : {}) },
      timeoutMs,
    });
  } catch (err) {
    if (readOnlyApp) await endReadOnlyBackends(ctx, target, route, readOnlyApp);
    throw err;
  }
  if (result.status >= 200 && result.status < 300) return { ok: true, rows: result.body ?? [] };
  if (readOnlyApp && !isSqlError(result.body)) await endReadOnlyBackends(ctx, target, route, readOnlyApp);
  return { ok: false, ...queryError(result.status, result.body, readOnlyApp !== undefined) };
}

/**
 * Run one of the control plane's own fixed statements (never SQL from a request) through the
 * project's postgres-meta on postgres-meta's own connection, for any member with `action`: state
 * of the project's services that the read-only role cannot see (Realtime's tenant row), read so
 * that every member gets the same truthful answer. Callers select only what they may show.
 */
export async function runServiceQuery(
  ctx: AuthedContext,
  ref: string,
  sql: string,
  action: Action = "projects.read",
): Promise<QueryAnswer> {
  const target = await reachableProject(ctx, ref, action);
  const route = requireMetaRoute(target);
  const headers = await metaHeaders(ctx, target, route, { asService: true });
  const seconds = ctx.deps.config.sql.statementTimeoutSeconds;
  const result = await callService(ctx, target, {
    ref,
    service: route.service,
    method: "POST",
    path: `${route.prefix}/query?statementTimeoutSecs=${seconds}&queryTimeoutSecs=${seconds + 5}`,
    headers,
    body: { query: sql },
    timeoutMs: (seconds + 10) * 1000,
  });
  if (result.status >= 200 && result.status < 300) return { ok: true, rows: result.body ?? [] };
  return { ok: false, ...queryError(result.status, result.body, false) };
}

/** A PostgreSQL error (a SQLSTATE code): the statement ended on the server. */
const isSqlError = (body: unknown) =>
  typeof body === "object" && body !== null && /^[0-9A-Z]{5}$/.test(String((body as { code?: unknown }).code));

/** Seconds after which no read-only backend can belong to a live request (the longest RPC, plus margin). */
const READ_ONLY_BACKEND_MAX_SECONDS = UNLIMITED_QUERY_SECONDS + 30;

/**
 * Terminates, as the superuser, the read-only role's backends that belong to the request tagged
 * `application` (its per-request application_name), that changed their application_name (so they
 * can no longer be told apart), or that are older than any request can be. Best effort: a failure
 * is logged, and the request's own answer stands.
 */
export async function endReadOnlyBackends(
  ctx: AuthedContext,
  target: ReachableProject,
  route: MetaRoute,
  application: string,
): Promise<void> {
  try {
    const headers = await metaHeaders(ctx, target, route, { asService: true });
    const result = await ctx.deps.hub.rpc(target.hostId, {
      ref: target.project.ref,
      service: route.service,
      method: "POST",
      path: `${route.prefix}/query?queryTimeoutSecs=5`,
      headers,
      body: {
        query: `select count(pg_terminate_backend(pid))::int as ended from pg_stat_activity
where usename = $1 and pid <> pg_backend_pid()
  and (application_name = $2 or left(application_name, $3) <> $4 or backend_start < now() - make_interval(secs => $5))`,
        parameters: [
          READ_ONLY_ROLE,
          application,
          READ_ONLY_APPLICATION_PREFIX.length,
          READ_ONLY_APPLICATION_PREFIX,
          Math.max(READ_ONLY_BACKEND_MAX_SECONDS, ctx.deps.config.sql.statementTimeoutSeconds + 60),
        ],
      },
      timeoutMs: 10_000,
    });
    if (result.status === undefined || result.status >= 300) {
      ctx.deps.logger.warn("could not end read-only backends", {
        ref: target.project.ref,
        status: result.status,
        code: result.code,
      });
    }
  } catch (err) {
    ctx.deps.logger.warn("could not end read-only backends", {
      ref: target.project.ref,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

const isReadOnlyConnection = (headers: Record<string, string>) => "x-connection-encrypted" in headers;

/** postgres-meta's error answer → the status and `{message, formattedError, code?, …}` Studio reads. */
export function queryError(
  status: number,
  body: unknown,
  readOnly: boolean,
): { status: number; error: Record<string, unknown> } {
  const b = (body && typeof body === "object" ? body : { error: typeof body === "string" ? body : "" }) as Record<
    string,
    unknown
  >;
  const str = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : undefined);
  const message = str(b.message) ?? str(b.error) ?? `postgres-meta answered HTTP ${status}`;
  if (status >= 500 && status !== 503 && status !== 504) {
    // postgres-meta itself failed (not the SQL): say so, without a 500 of ours.
    throw new ApiError("bad_gateway", `postgres-meta failed: ${message}`);
  }
  const error: Record<string, unknown> = { message, formattedError: str(b.formattedError) ?? message };
  for (const f of ERROR_FIELDS) if (b[f] !== undefined) error[f] = b[f];
  // The read-only role cannot log in: the project's database predates it, or it was dropped.
  if (readOnly && (b.code === "28P01" || b.code === "28000")) {
    throw new ApiError(
      "unavailable",
      "Read-only database access is not available on this project: the role supamanager_read_only cannot log in",
    );
  }
  return { status: Math.max(status, 400), error };
}
