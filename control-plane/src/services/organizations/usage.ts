import { and, asc, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { runServiceQuery } from "../pg-meta/query.js";
import { orgForMember } from "./access.js";

/**
 * The organization usage page (GET /platform/organizations/{slug}/usage, OrgUsageResponse),
 * measured when asked from each running project of the organization through its postgres-meta:
 * - DATABASE_SIZE: bytes of the project's databases (pg_database_size, as the reports use);
 * - STORAGE_SIZE: bytes of the objects in its Storage (`storage.objects` metadata sizes), where
 *   the project has a `storage` schema;
 * - MONTHLY_ACTIVE_USERS: its Auth users who signed in within the period (`auth.users`
 *   last_sign_in_at; token refreshes are not recorded there, so this is a lower bound), where the
 *   project has an `auth` schema.
 * Sizes are answered in GB (GiB), as Studio shows them. Nothing is billed: every metric is
 * unlimited, at no cost. A project that is paused, still starting or on an offline host cannot be
 * measured and is left out of the figures (the page says nothing about it). Egress, function
 * invocations and Realtime figures are not counted over a period, so they are not listed and
 * Studio shows its "No data" state for them.
 */

const GIB = 1024 ** 3;
const ACTIVE = ["ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY"];

/** Our own statement; tables that only some releases have are read through query_to_xml so their absence is null, not an error. */
export function usageSql(start: Date, end: Date): string {
  const count = (table: string, inner: string) =>
    `case when pg_catalog.to_regclass('${table}') is null then null else ((pg_catalog.xpath('/row/n/text()', pg_catalog.query_to_xml('${inner.replaceAll("'", "''")}', false, true, '')))[1])::text::bigint end`;
  return `select
  (select coalesce(sum(pg_catalog.pg_database_size(datname)), 0) from pg_catalog.pg_database where not datistemplate)::bigint as database_size,
  ${count("storage.objects", "select coalesce(sum((metadata->>'size')::bigint), 0) as n from storage.objects")} as storage_size,
  ${count("auth.users", `select count(*) as n from auth.users where last_sign_in_at >= '${start.toISOString()}' and last_sign_in_at < '${end.toISOString()}'`)} as monthly_active_users;`;
}

const num = z.preprocess((v) => (v === null || v === undefined ? null : Number(v)), z.number().nullable().catch(null));
const UsageRow = z.object({ database_size: num, storage_size: num, monthly_active_users: num });

const METRICS = [
  ["DATABASE_SIZE", "database_size", GIB],
  ["STORAGE_SIZE", "storage_size", GIB],
  ["MONTHLY_ACTIVE_USERS", "monthly_active_users", 1],
] as const;

export interface OrgMetricUsage {
  metric: string;
  usage: number;
  usage_original: number;
  cost: number;
  available_in_plan: boolean;
  unlimited: boolean;
  capped: boolean;
  pricing_strategy: "NONE";
  pricing_free_units: number;
  project_allocations: { ref: string; name: string; usage: number }[];
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/** The current calendar month (the subscription's period), or Studio's `start`/`end`. */
function period(ctx: AuthedContext, start?: string, end?: string): [Date, Date] {
  const now = new Date(ctx.deps.clock.now());
  const from = start ? new Date(start) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = end ? new Date(end) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return [from, to];
}

export async function orgUsage(
  ctx: AuthedContext,
  slug: string,
  q: { project_ref?: string | undefined; start?: string | undefined; end?: string | undefined },
): Promise<{ usage_billing_enabled: false; usages: OrgMetricUsage[] }> {
  const { org } = await orgForMember(ctx, slug, "billing.read");
  const rows = await ctx.db
    .select({ ref: projects.ref, name: projects.name })
    .from(projects)
    .where(
      and(
        eq(projects.orgId, org.id),
        inArray(projects.status, ACTIVE),
        ...(q.project_ref !== undefined ? [eq(projects.ref, q.project_ref)] : []),
      ),
    )
    .orderBy(asc(projects.name));
  const sql = usageSql(...period(ctx, q.start, q.end));
  const measured = await Promise.all(
    rows.map(async (p) => {
      try {
        const answer = await runServiceQuery(ctx, p.ref, sql);
        const row = answer.ok ? UsageRow.safeParse((answer.rows as unknown[])[0]) : undefined;
        if (row?.success) return { ...p, ...row.data };
        ctx.deps.logger.warn("project usage could not be measured", { ref: p.ref });
      } catch (err) {
        // Unreachable now (host offline, project changing state): left out, as the page describes.
        ctx.deps.logger.info("project usage not measured", {
          ref: p.ref,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      return null;
    }),
  );
  const usages: OrgMetricUsage[] = [];
  for (const [metric, column, unit] of METRICS) {
    const allocations = measured.flatMap((m) =>
      m && m[column] !== null ? [{ ref: m.ref, name: m.name, usage: round((m[column] as number) / unit) }] : [],
    );
    // A metric no measured project has (no Storage or Auth anywhere) is not listed.
    if (allocations.length === 0) continue;
    const usage = round(allocations.reduce((n, a) => n + a.usage, 0));
    usages.push({
      metric,
      usage,
      usage_original: usage,
      cost: 0,
      available_in_plan: true,
      unlimited: true,
      capped: false,
      pricing_strategy: "NONE",
      pricing_free_units: 0,
      project_allocations: allocations,
    });
  }
  return { usage_billing_enabled: false, usages };
}
