import { z } from "zod";
import type { AuthedContext } from "../../deps.js";
import { ApiError, notFound } from "../../errors.js";
import { projectForMember } from "../organizations/access.js";
import { runServiceQuery } from "../pg-meta/query.js";

/**
 * Studio's Compute and Disk page (apps/studio/data/config/disk-*-query.ts) and the Management
 * API's `GET /v1/projects/{ref}/config/disk/util`. A SupaManager project has no disk of its own:
 * its database lives in a Docker volume on its host's filesystem, with no size, IOPS, throughput
 * or autoscaling that belongs to the project. So:
 *
 * - `disk/util` answers what is measured: the space the project's databases and its write-ahead
 *   log occupy (PostgreSQL's own accounting, read through its postgres-meta). The filesystem's
 *   size and free space are not measured (the agent does not report them), so both are 0, which
 *   readers of this shape treat as "unknown" rather than as a full disk.
 * - `disk` and `disk/custom-config` (the provisioned disk, its autoscaling) answer 404 with a
 *   message saying so; Studio shows it under "Failed to load disk size data" and keeps the disk
 *   inputs disabled.
 */

/** The space the databases occupy (those the role may size), and whether the WAL may be listed. */
export const DISK_USAGE_SQL = `select
  (select coalesce(sum(pg_catalog.pg_database_size(d.oid)), 0) from pg_catalog.pg_database d
    where not d.datistemplate
      and (pg_catalog.has_database_privilege(d.oid, 'CONNECT') or pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER')))::bigint as db_size_bytes,
  pg_catalog.has_function_privilege('pg_catalog.pg_ls_waldir()', 'EXECUTE') as wal_visible;`;

/**
 * The write-ahead log's size. A separate statement: PostgreSQL checks the function's privilege
 * when the plan starts, even in a branch that would not run, so it is sent only when allowed.
 */
export const WAL_SIZE_SQL =
  "select coalesce(sum(w.size), 0)::bigint as wal_size_bytes from pg_catalog.pg_ls_waldir() w;";

const UsageRow = z.object({ db_size_bytes: z.coerce.number().nonnegative(), wal_visible: z.boolean() });
const WalRow = z.object({ wal_size_bytes: z.coerce.number().nonnegative() });

/** DiskUtilMetricsResponse (platform.d.ts and api_v1_openapi.json). */
export const DiskUtilResponse = z.object({
  timestamp: z.string(),
  metrics: z.object({
    fs_size_bytes: z.number().nonnegative(),
    fs_avail_bytes: z.number().nonnegative(),
    fs_used_bytes: z.number().nonnegative(),
  }),
});
export type DiskUtil = z.infer<typeof DiskUtilResponse>;

function firstRow<S extends z.ZodType>(answer: Awaited<ReturnType<typeof runServiceQuery>>, schema: S): z.output<S> {
  const row = answer.ok && Array.isArray(answer.rows) ? schema.safeParse(answer.rows[0]) : undefined;
  if (!row?.success) {
    const why = !answer.ok && typeof answer.error.message === "string" ? `: ${answer.error.message}` : "";
    throw new ApiError("bad_gateway", `The project's database size could not be read${why}`);
  }
  return row.data;
}

/** What the project's databases and WAL occupy now; any member (our own fixed SQL). */
export async function diskUtilization(ctx: AuthedContext, ref: string): Promise<DiskUtil> {
  const usage = firstRow(await runServiceQuery(ctx, ref, DISK_USAGE_SQL), UsageRow);
  const wal = usage.wal_visible ? firstRow(await runServiceQuery(ctx, ref, WAL_SIZE_SQL), WalRow).wal_size_bytes : 0;
  return {
    timestamp: new Date(ctx.deps.clock.now()).toISOString(),
    metrics: { fs_size_bytes: 0, fs_avail_bytes: 0, fs_used_bytes: usage.db_size_bytes + wal },
  };
}

export const NO_DISK_MESSAGE =
  "SupaManager gives a project no disk of its own: its database lives on its host's filesystem, with no disk size, IOPS, throughput or autoscaling to show or change here. The space the database uses is measured (disk/util, and Observability → Database).";

/** GET disk and disk/custom-config: members learn that there is no provisioned disk; others 404 as ever. */
export async function provisionedDisk(ctx: AuthedContext, ref: string): Promise<never> {
  await projectForMember(ctx, ref, "projects.read");
  throw notFound(NO_DISK_MESSAGE);
}
