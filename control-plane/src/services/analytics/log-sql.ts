import { badRequest } from "../../errors.js";
import type { StackService } from "../projects/release-services.js";

/**
 * Studio's log pages ask `analytics/endpoints/logs.all` with BigQuery-dialect SQL over Logflare's
 * sources (apps/studio/components/interfaces/Settings/Logs/Logs.utils.ts: genDefaultQuery,
 * genCountQuery, genChartQuery, genSingleLogQuery). SupaManager runs no Logflare: it answers those
 * generated queries from the project's container logs (ADR 0028). This file recognises which of
 * Studio's queries a SQL string is; anything else is refused with a 400 that says what is served.
 */

/** Logflare source → the stack service whose container writes those logs. */
export const LOG_SOURCES: Record<string, StackService | null> = {
  postgres_logs: "db",
  pg_cron_logs: "db",
  edge_logs: "gateway",
  auth_logs: "auth",
  postgrest_logs: "rest",
  storage_logs: "storage",
  realtime_logs: "realtime",
  function_logs: "functions",
  function_edge_logs: "functions",
  supavisor_logs: "pooler",
  pgbouncer_logs: "pooler",
  // Written by the hosted platform's upgrade tooling; no container of ours produces it.
  pg_upgrade_logs: null,
};

export type LogTable = keyof typeof LOG_SOURCES;

export type LogQuery =
  | { kind: "preview"; table: LogTable; limit: number; search: RegExp[] }
  | { kind: "count"; table: LogTable; search: RegExp[] }
  | { kind: "chart"; table: LogTable; trunc: "minute" | "hour" | "day"; search: RegExp[] }
  | { kind: "single"; table: LogTable; id: string };

const MAX_LIMIT = 1000;

const unsupported = () =>
  badRequest(
    "SupaManager answers the log pages' own queries (latest events, counts, the event chart and one event by id, with the search box) from the project's container logs; it has no Logflare to run other SQL, joins or filters",
  );

/** Which of Studio's generated log queries `sql` is (400 for any other SQL). */
export function parseLogSql(sql: string): LogQuery {
  const text = sql.replace(/--[^\n]*(?=\n|$)/g, (c) => (c.includes("log-event-chart") ? " __chart__ " : " ")).trim();
  const tables = [...new Set([...text.matchAll(/\b([a-z_]+_logs)\b/g)].map((m) => m[1] as string))];
  const known = tables.filter((t): t is LogTable => t in LOG_SOURCES);
  // pg_cron logs are postgres_logs filtered by Studio itself: its queries name postgres_logs.
  const isCron = /parsed\.application_name\s*=\s*'pg_cron'/.test(text);
  if (known.length !== 1 || tables.length !== 1) {
    if (!(isCron && known.length === 1 && known[0] === "postgres_logs")) throw unsupported();
  }
  const table: LogTable = isCron ? "pg_cron_logs" : (known[0] as LogTable);
  const where = whereClause(text);

  const single = /\bwhere\s+id\s*=\s*'([0-9a-f-]{1,64})'\s*limit\s+1\s*;?$/i.exec(text);
  if (single) return { kind: "single", table, id: single[1] as string };

  const search = searchTerms(where, isCron);
  if (/__chart__/.test(text) || /\bok_count\b/i.test(text)) {
    const trunc = /timestamp_trunc\([^,]+,\s*(minute|hour|day)\s*\)/i.exec(text)?.[1]?.toLowerCase();
    if (trunc !== "minute" && trunc !== "hour" && trunc !== "day") throw unsupported();
    return { kind: "chart", table, trunc, search };
  }
  if (/^select\s+count\(\*\)\s+as\s+count\s+from\b/i.test(text)) return { kind: "count", table, search };
  if (/^select\b/i.test(text) && /\border\s+by\s+(?:[a-z_]+\.)?timestamp\s+desc\b/i.test(text)) {
    const limit = Number(/\blimit\s+(\d{1,6})\b/i.exec(text)?.[1] ?? 100);
    return { kind: "preview", table, limit: Math.min(Math.max(limit, 1), MAX_LIMIT), search };
  }
  throw unsupported();
}

/** The text of the WHERE clause (empty when there is none). */
function whereClause(text: string): string {
  const m = /\bwhere\b([\s\S]*?)(?:\bgroup\s+by\b|\border\s+by\b|\blimit\b|$)/i.exec(text);
  return m?.[1]?.trim() ?? "";
}

/**
 * The search box's `regexp_contains(event_message, '…')` terms. Every other condition of the
 * WHERE clause must be one Studio adds itself (the chart's time window, pg_cron's filter);
 * a filter we cannot apply is refused rather than silently ignored.
 */
function searchTerms(where: string, isCron: boolean): RegExp[] {
  if (where === "") return [];
  const terms: RegExp[] = [];
  let rest = where.replace(/regexp_contains\(\s*event_message\s*,\s*'((?:[^'\\]|\\.|'')*)'\s*\)/gi, (_m, p: string) => {
    const pattern = p.replace(/''/g, "'").replace(/\\\\/g, "\\");
    terms.push(searchRegex(pattern));
    return " ";
  });
  rest = rest.replace(/\bt\.timestamp\s*>\s*'[0-9T:.Z+-]+'/gi, " ");
  if (isCron) {
    rest = rest.replace(/parsed\.application_name\s*=\s*'pg_cron'\s*or\s*event_message\s+like\s*'%cron job%'/i, " ");
  }
  if (rest.replace(/\b(and|or)\b|[()\s]/gi, "") !== "") throw unsupported();
  return terms;
}

/** Longest search pattern accepted. */
const MAX_PATTERN = 256;

/**
 * The search box's pattern as a RegExp, refusing what could make the control plane backtrack for
 * long (a quantified group that itself holds a quantifier, or a back-reference): BigQuery runs
 * RE2, which never backtracks; JavaScript's engine does, and the lines come from the project.
 */
export function searchRegex(pattern: string): RegExp {
  if (pattern.length > MAX_PATTERN) throw badRequest(`The search may be at most ${MAX_PATTERN} characters`);
  if (/\([^)]*[+*?}][^)]*\)\s*[+*{?]/.test(pattern) || /\\[1-9]/.test(pattern)) {
    throw badRequest("The search may not repeat a group that repeats (or refer back to a group); simplify it");
  }
  try {
    return new RegExp(pattern);
  } catch {
    throw badRequest(`The search ${JSON.stringify(pattern)} is not a valid regular expression`);
  }
}
