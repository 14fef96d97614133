import { createHash } from "node:crypto";
import { DOCKER_LOGS_MAX_TAIL, type DockerLogLine } from "@supamanager/shared";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import type { ReleaseManifest } from "../../releases/manifest.js";
import { containerLogs } from "../logs/container-logs.js";
import { projectForMember } from "../organizations/access.js";
import { requireReleaseService, type StackService } from "../projects/release-services.js";
import { LOG_SOURCES, type LogQuery, type LogTable, parseLogSql } from "./log-sql.js";

/**
 * Studio's log explorer and service log pages (`analytics/endpoints/logs.all`) answered from the
 * project's container logs, read by its host agent (the docker-logs rpc, docs/agent.md): the last
 * DOCKER_LOGS_MAX_TAIL lines of the service behind the Logflare source Studio names, cut to the
 * time window Studio asks for. There is no log store: what Docker still holds is what there is.
 */

export interface LogWindow {
  /** ISO 8601; absent: no lower bound. */
  start?: string | undefined;
  /** ISO 8601; absent: now. */
  end?: string | undefined;
}

/** One log event as Logflare answers it: `timestamp` in microseconds since the epoch. */
export interface LogEvent {
  id: string;
  timestamp: number;
  event_message: string;
  [field: string]: unknown;
}

export type LogsAnswer = { result: Record<string, unknown>[] };

/** The project's release (for which services it runs), as the member may see it. */
export async function projectRelease(ctx: AuthedContext, ref: string): Promise<ReleaseManifest> {
  const { project } = await projectForMember(ctx, ref, "projects.read");
  const release = ctx.deps.releases.get(project.release);
  if (!release) {
    throw new ApiError("unavailable", `Project ${ref} runs release ${project.release}, which is not loaded here`);
  }
  return release;
}

/** The container log lines of one stack service of the project, as events. */
export async function serviceEvents(
  ctx: AuthedContext,
  ref: string,
  release: ReleaseManifest,
  service: StackService,
  needFor: string,
): Promise<{ service: string; events: LogEvent[] }> {
  const compose = requireReleaseService(release, service, needFor);
  const logs = await containerLogs(ctx, ref, { service: compose, tail: DOCKER_LOGS_MAX_TAIL });
  return { service: compose, events: logs.lines.map((l) => toEvent(ref, l)) };
}

/** POST|GET …/analytics/endpoints/logs.all: Studio's generated log SQL, answered from container logs. */
export async function logsAll(ctx: AuthedContext, ref: string, sql: string, window: LogWindow): Promise<LogsAnswer> {
  const q = parseLogSql(sql);
  const release = await projectRelease(ctx, ref);
  const source = LOG_SOURCES[q.table];
  if (source === null || source === undefined) {
    throw new ApiError("conflict", `SupaManager projects produce no ${q.table}: there is no such service to read`);
  }
  const { events } = await serviceEvents(ctx, ref, release, source, `the ${q.table} page`);
  const from = window.start !== undefined ? Date.parse(window.start) * 1000 : Number.NEGATIVE_INFINITY;
  const to = window.end !== undefined ? Date.parse(window.end) * 1000 : Number.POSITIVE_INFINITY;
  let selected = events.filter((e) => e.timestamp >= from && e.timestamp <= to);
  if (q.table === "pg_cron_logs") selected = selected.filter((e) => /cron job|pg_cron/.test(e.event_message));
  return { result: answer(q, selected) };
}

function answer(q: LogQuery, events: LogEvent[]): Record<string, unknown>[] {
  if (q.kind === "single") {
    const e = events.find((x) => x.id === q.id);
    return e
      ? [{ id: e.id, timestamp: e.timestamp, event_message: e.event_message, metadata: [fieldsOf(q.table, e)] }]
      : [];
  }
  const matching = events.filter((e) => q.search.every((re) => re.test(e.event_message)));
  if (q.kind === "count") return [{ count: matching.length }];
  if (q.kind === "chart") return chart(q.table, q.trunc, matching);
  return matching
    .sort((a, b) => b.timestamp - a.timestamp)
    .slice(0, q.limit)
    .map((e) => ({ id: e.id, timestamp: e.timestamp, event_message: e.event_message, ...fieldsOf(q.table, e) }));
}

const TRUNC_US = { minute: 60e6, hour: 3600e6, day: 86_400e6 } as const;

/** Events per time bucket, split as Studio's chart query splits them (ok / warning / error). */
function chart(table: LogTable, trunc: keyof typeof TRUNC_US, events: LogEvent[]) {
  const buckets = new Map<number, { ok_count: number; warning_count: number; error_count: number }>();
  for (const e of events) {
    const t = Math.floor(e.timestamp / TRUNC_US[trunc]) * TRUNC_US[trunc];
    const b = buckets.get(t) ?? { ok_count: 0, warning_count: 0, error_count: 0 };
    const level = levelOf(table, e);
    if (level === "error") b.error_count++;
    else if (level === "warning") b.warning_count++;
    else b.ok_count++;
    buckets.set(t, b);
  }
  return [...buckets.entries()].sort(([a], [b]) => a - b).map(([timestamp, counts]) => ({ timestamp, ...counts }));
}

const PG_SEVERITY = /\b(DEBUG\d?|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|STATEMENT|DETAIL|HINT|CONTEXT):\s/;
const ACCESS_LINE = /"([A-Z]+) ([^ "?]*)(\?[^ "]*)? HTTP\/[\d.]+" (\d{3}) /;

/** ok / warning / error, the way Studio's chart conditions split each source. */
export function levelOf(table: LogTable, e: LogEvent): "ok" | "warning" | "error" {
  if (table === "edge_logs" || table === "function_edge_logs") {
    const status = Number(ACCESS_LINE.exec(e.event_message)?.[4] ?? 0);
    return status >= 500 ? "error" : status >= 400 ? "warning" : "ok";
  }
  if (table === "postgres_logs" || table === "pg_cron_logs") {
    const sev = PG_SEVERITY.exec(e.event_message)?.[1];
    return sev === "ERROR" || sev === "FATAL" || sev === "PANIC" ? "error" : sev === "WARNING" ? "warning" : "ok";
  }
  const json = parsedJson(e.event_message);
  const level = String(json?.level ?? json?.severity ?? "").toLowerCase();
  if (level === "error" || level === "fatal" || level === "panic") return "error";
  if (level === "warning" || level === "warn") return "warning";
  return /\b(error|fatal|panic)\b/i.test(e.event_message) ? "error" : "ok";
}

/** The columns Studio's query for `table` selects, derived from the line where it can be. */
function fieldsOf(table: LogTable, e: LogEvent): Record<string, unknown> {
  switch (table) {
    case "postgres_logs":
    case "pg_cron_logs":
      return {
        identifier: e.ref,
        error_severity: PG_SEVERITY.exec(e.event_message)?.[1] ?? null,
        detail: null,
        hint: null,
      };
    case "edge_logs": {
      const m = ACCESS_LINE.exec(e.event_message);
      return {
        identifier: e.ref,
        method: m?.[1] ?? null,
        path: m?.[2] ?? null,
        search: m?.[3] ?? null,
        status_code: m ? Number(m[4]) : null,
      };
    }
    case "auth_logs": {
      const j = parsedJson(e.event_message);
      return {
        level: j?.level ?? null,
        status: j?.status ?? null,
        path: j?.path ?? null,
        msg: j?.msg ?? null,
        error: j?.error ?? null,
      };
    }
    default:
      return {};
  }
}

function parsedJson(text: string): Record<string, unknown> | null {
  if (!text.startsWith("{")) return null;
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === "object" ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Microseconds since the epoch from Docker's RFC 3339 timestamp (nanosecond precision). */
export function micros(timestamp: string | undefined): number | null {
  if (timestamp === undefined) return null;
  const ms = Date.parse(timestamp);
  if (Number.isNaN(ms)) return null;
  const frac = /\.(\d+)/.exec(timestamp)?.[1] ?? "";
  const extraMicros = Number(frac.slice(3, 6).padEnd(3, "0"));
  return ms * 1000 + extraMicros;
}

/** A container log line as a Logflare-like event; its id is stable across requests. */
function toEvent(ref: string, l: DockerLogLine): LogEvent & { ref: string } {
  const timestamp = micros(l.timestamp) ?? 0;
  const digest = createHash("sha256")
    .update(`${l.service}\n${l.timestamp ?? ""}\n${l.stream}\n${l.text}`)
    .digest("hex");
  const id = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-${digest.slice(12, 16)}-${digest.slice(16, 20)}-${digest.slice(20, 32)}`;
  return { id, timestamp, event_message: l.text, ref };
}
