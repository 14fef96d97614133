import { z } from "zod";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { containerStats } from "../logs/container-stats.js";
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
 * From one resource sample of the project's running containers, taken by its host agent:
 * - `avg_cpu_usage`, `max_cpu_usage`: CPU the project's containers use, in percent of the host's
 *   CPUs (one sample, so average and maximum are the same value);
 * - `ram_usage`: memory the containers use (page cache excluded), in percent of their limits.
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

const FROM_POSTGRES = ["pg_stat_database_num_backends", "max_db_connections", "pg_database_size"] as const;
const FROM_CONTAINERS = ["avg_cpu_usage", "max_cpu_usage", "ram_usage"] as const;
export const MEASURED = [...FROM_POSTGRES, ...FROM_CONTAINERS] as const;
type Measured = (typeof MEASURED)[number];

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
  const wanted = attributes.filter((a): a is Measured => (MEASURED as readonly string[]).includes(a));
  const errors: Record<string, { message: string }> = {};
  for (const a of attributes) {
    if (!wanted.includes(a as Measured)) {
      errors[a] = { message: `SupaManager does not measure ${a}; it reports ${MEASURED.join(", ")}` };
    }
  }
  const period_start = new Date(Math.floor(nowMs / step) * step).toISOString();
  if (wanted.length === 0) return { data: [], series: {}, errors };

  const measured: Partial<Record<Measured, { value: number; format: string; limit: number }>> = {};
  if (wanted.some((a) => (FROM_POSTGRES as readonly string[]).includes(a))) {
    const answer = await runQuery(ctx, ref, { query: STATS_SQL });
    const row = answer.ok ? StatsRow.safeParse((answer.rows as unknown[])[0]) : undefined;
    if (!row?.success) throw new ApiError("bad_gateway", "The project's database statistics could not be read");
    const st = row.data;
    measured.pg_stat_database_num_backends = {
      value: st.pg_stat_database_num_backends,
      format: "",
      limit: st.max_db_connections,
    };
    measured.max_db_connections = { value: st.max_db_connections, format: "", limit: st.max_db_connections };
    measured.pg_database_size = { value: st.pg_database_size, format: "bytes", limit: st.pg_database_size };
  }
  if (wanted.some((a) => (FROM_CONTAINERS as readonly string[]).includes(a))) {
    const { containers, hostCpus } = await containerStats(ctx, ref);
    const cpu = round2(containers.reduce((n, c) => n + c.cpuPercent, 0) / hostCpus);
    const used = containers.reduce((n, c) => n + c.memoryBytes, 0);
    const limit = containers.reduce((n, c) => n + c.memoryLimitBytes, 0);
    measured.avg_cpu_usage = { value: cpu, format: "%", limit: 100 };
    measured.max_cpu_usage = { value: cpu, format: "%", limit: 100 };
    measured.ram_usage = { value: limit > 0 ? round2((used / limit) * 100) : 0, format: "%", limit: 100 };
  }
  const values: Record<string, string> = {};
  const series: Record<string, SeriesMetadata> = {};
  for (const a of wanted) {
    const m = measured[a];
    if (!m) continue;
    values[a] = String(m.value);
    series[a] = { format: m.format, total: m.value, totalAverage: m.value, yAxisLimit: m.limit };
  }
  return { data: [{ period_start, values }], series, ...(Object.keys(errors).length > 0 ? { errors } : {}) };
}

const round2 = (n: number) => Math.round(n * 100) / 100;
