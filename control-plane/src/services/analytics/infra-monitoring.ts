import { z } from "zod";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { runQuery } from "../pg-meta/query.js";

/**
 * GET /platform/projects/{ref}/infra-monitoring: the series of Studio's Observability reports
 * (apps/studio/data/analytics/infra-monitoring-query.ts). SupaManager keeps no metrics history,
 * so each series is the value measured now, as one point; what we cannot measure is reported per
 * attribute in `errors` (Studio shows that chart's error and draws the others).
 *
 * Measured from PostgreSQL's statistics through the project's postgres-meta:
 * - `pg_stat_database_num_backends`: connections (sum of pg_stat_database.numbackends);
 * - `max_db_connections`: the server's max_connections;
 * - `pg_database_size`: bytes of the project's databases.
 */

const STATS_SQL = `select
  (select coalesce(sum(numbackends), 0) from pg_catalog.pg_stat_database)::bigint as pg_stat_database_num_backends,
  current_setting('max_connections')::bigint as max_db_connections,
  (select coalesce(sum(pg_catalog.pg_database_size(datname)), 0) from pg_catalog.pg_database where not datistemplate)::bigint as pg_database_size;`;

const StatsRow = z.object({
  pg_stat_database_num_backends: z.coerce.number(),
  max_db_connections: z.coerce.number(),
  pg_database_size: z.coerce.number(),
});

export const MEASURED = ["pg_stat_database_num_backends", "max_db_connections", "pg_database_size"] as const;

export interface SeriesMetadata {
  format: string;
  total: number;
  totalAverage: number;
  yAxisLimit: number;
}

export interface InfraMonitoring {
  data: { period_start: string; values: Record<string, string> }[];
  series: Record<string, SeriesMetadata>;
  errors?: Record<string, { message: string }>;
}

const INTERVAL_MS: Record<string, number> = {
  "1m": 60_000,
  "5m": 300_000,
  "10m": 600_000,
  "30m": 1_800_000,
  "1h": 3_600_000,
  "1d": 86_400_000,
};

export async function infraMonitoring(
  ctx: AuthedContext,
  ref: string,
  attributes: string[],
  interval: string,
  nowMs: number,
): Promise<InfraMonitoring> {
  const step = INTERVAL_MS[interval];
  if (step === undefined)
    throw new ApiError("bad_request", `interval must be one of ${Object.keys(INTERVAL_MS).join(", ")}`);
  const wanted = attributes.filter((a): a is (typeof MEASURED)[number] => (MEASURED as readonly string[]).includes(a));
  const errors: Record<string, { message: string }> = {};
  for (const a of attributes) {
    if (!wanted.includes(a as (typeof MEASURED)[number])) {
      errors[a] = {
        message: `SupaManager does not measure ${a}; it reports ${MEASURED.join(", ")} from PostgreSQL's statistics`,
      };
    }
  }
  const period_start = new Date(Math.floor(nowMs / step) * step).toISOString();
  if (wanted.length === 0) return { data: [], series: {}, errors };

  const answer = await runQuery(ctx, ref, { query: STATS_SQL });
  const row = answer.ok ? StatsRow.safeParse((answer.rows as unknown[])[0]) : undefined;
  if (!row?.success) throw new ApiError("bad_gateway", "The project's database statistics could not be read");
  const stats = row.data;
  const values: Record<string, string> = {};
  const series: Record<string, SeriesMetadata> = {};
  for (const a of wanted) {
    const v = stats[a];
    values[a] = String(v);
    const limit = a === "pg_stat_database_num_backends" ? stats.max_db_connections : v;
    series[a] = { format: a === "pg_database_size" ? "bytes" : "", total: v, totalAverage: v, yAxisLimit: limit };
  }
  return { data: [{ period_start, values }], series, ...(Object.keys(errors).length > 0 ? { errors } : {}) };
}
