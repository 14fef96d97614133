import { z } from "zod";
import type { AuthedContext } from "../../deps.js";
import { ApiError, badRequest, conflict } from "../../errors.js";
import { effectiveParts } from "../../releases/compute.js";
import { projectForMember } from "../organizations/access.js";
import { runServiceQuery } from "../pg-meta/query.js";
import { requireReleaseService } from "../projects/release-services.js";

/**
 * Studio's Realtime settings page (GET|PATCH /platform/projects/{ref}/config/realtime, also the
 * Management API's /v1/projects/{ref}/config/realtime), answered from what the project's Realtime
 * enforces: its tenant row. Self-hosted Realtime keeps one tenant, `realtime-dev` (the host name
 * it is called by, releases/production/kong.ts), in the `_realtime` schema of the project's own
 * database, and re-creates that row at every start (SEED_SELF_HOST) with the limits of its
 * environment. So the row is the truth, and a change written into it would be lost at the next
 * restart: nothing here changes it. A PATCH that sends the values GET gave passes (Studio's form
 * sends every field); one that changes any refuses them by name (ADR 0043).
 */

export const REALTIME_TENANT = "realtime-dev";

/** RealtimeConfigResponse (api_v1_openapi.json): every field nullable; null = Realtime keeps no value for it. */
export const RealtimeConfigResponse = z.object({
  private_only: z.boolean().nullable(),
  connection_pool: z.number().int().nullable(),
  max_concurrent_users: z.number().int().nullable(),
  max_events_per_second: z.number().int().nullable(),
  max_bytes_per_second: z.number().int().nullable(),
  max_channels_per_client: z.number().int().nullable(),
  max_joins_per_second: z.number().int().nullable(),
  max_presence_events_per_second: z.number().int().nullable(),
  max_payload_size_in_kb: z.number().int().nullable(),
  suspend: z.boolean().nullable(),
});
export type RealtimeConfig = z.infer<typeof RealtimeConfigResponse>;

/** The tenant's columns by the API's names (connection_pool lives in the tenant's extension settings). */
const TENANT_COLUMNS = [
  "private_only",
  "max_concurrent_users",
  "max_events_per_second",
  "max_bytes_per_second",
  "max_channels_per_client",
  "max_joins_per_second",
  "max_presence_events_per_second",
  "max_payload_size_in_kb",
  "suspend",
] as const;

/**
 * The tenant's limits, never its secrets (jwt_secret, the extension's database credentials). Read
 * through to_jsonb so a column an older Realtime lacks is null instead of an error.
 */
export const TENANT_SQL = `select ${TENANT_COLUMNS.map((c) => `s.j -> '${c}' as ${c}`).join(", ")},
  (select e.settings -> 'db_pool' from _realtime.extensions e
    where e.tenant_external_id = s.external_id and e.type = 'postgres_cdc_rls' limit 1) as connection_pool
from (select to_jsonb(t) as j, t.external_id from _realtime.tenants t where t.external_id = '${REALTIME_TENANT}') s;`;

const int = z.preprocess(
  (v) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v),
  z.number().int().nullable().catch(null),
);
const bool = z.boolean().nullable().catch(null);
const TenantRow = z.object({
  private_only: bool,
  connection_pool: int,
  max_concurrent_users: int,
  max_events_per_second: int,
  max_bytes_per_second: int,
  max_channels_per_client: int,
  max_joins_per_second: int,
  max_presence_events_per_second: int,
  max_payload_size_in_kb: int,
  suspend: bool,
});

/** The project runs Realtime (its release has the service and the project did not leave the part out), or 409. */
async function realtimeProject(ctx: AuthedContext, ref: string, action: "projects.read" | "projects.update") {
  const { project } = await projectForMember(ctx, ref, action);
  const release = ctx.deps.releases.get(project.release);
  if (!release)
    throw new ApiError("unavailable", `Project ${ref} runs release ${project.release}, which is not loaded here`);
  const name = requireReleaseService(release, "realtime", "Realtime (its settings and inspector)");
  const part = release.services[name]?.part;
  if (part && !effectiveParts(release, project.parts).includes(part)) {
    throw conflict(
      `This project does not run Realtime: its release (${release.name}) offers it as the optional part "${part}", which the project was created without.`,
    );
  }
  return project;
}

const NOT_SEEDED =
  "The project's Realtime has not created its tenant yet (it does so when it starts); try again once the project's realtime service is healthy";

/** GET: the limits the project's Realtime runs with, read from its tenant row (any member). */
export async function realtimeConfig(ctx: AuthedContext, ref: string): Promise<RealtimeConfig> {
  await realtimeProject(ctx, ref, "projects.read");
  const answer = await runServiceQuery(ctx, ref, TENANT_SQL);
  if (!answer.ok) {
    // 42P01/3F000: no _realtime schema or table yet (Realtime runs its migrations when it starts).
    if (answer.error.code === "42P01" || answer.error.code === "3F000") throw conflict(NOT_SEEDED);
    const message = typeof answer.error.message === "string" ? answer.error.message : "unknown error";
    throw new ApiError("bad_gateway", `Realtime's settings could not be read from the project's database: ${message}`);
  }
  const rows = Array.isArray(answer.rows) ? answer.rows : [];
  if (rows.length === 0) throw conflict(NOT_SEEDED);
  const row = TenantRow.safeParse(rows[0]);
  if (!row.success) throw new ApiError("bad_gateway", "Realtime's tenant row has an unexpected shape");
  return row.data;
}

/** UpdateRealtimeConfigBody (api_v1_openapi.json), with its ranges. */
const intIn = (min: number, max: number) => z.number().int().min(min).max(max);
export const UpdateRealtimeConfigBody = z.strictObject({
  private_only: z.boolean().optional(),
  connection_pool: intIn(1, 100).optional(),
  max_concurrent_users: intIn(1, 50000).optional(),
  max_events_per_second: intIn(1, 50000).optional(),
  max_bytes_per_second: intIn(1, 10_000_000).optional(),
  max_channels_per_client: intIn(1, 10000).optional(),
  max_joins_per_second: intIn(1, 5000).optional(),
  max_presence_events_per_second: intIn(1, 5000).optional(),
  max_payload_size_in_kb: intIn(1, 10000).optional(),
  suspend: z.boolean().optional(),
});

/** The fields of `body` whose value differs from what Realtime runs with. */
export function realtimeChanges(body: z.infer<typeof UpdateRealtimeConfigBody>, current: RealtimeConfig): string[] {
  return Object.entries(body)
    .filter(([k, v]) => v !== undefined && v !== current[k as keyof RealtimeConfig])
    .map(([k]) => k)
    .sort();
}

/** Checks done before the body is read: outsiders get 404, members who may not change settings 403. */
export async function assertMayUpdateRealtimeConfig(ctx: AuthedContext, ref: string): Promise<void> {
  await realtimeProject(ctx, ref, "projects.update");
}

/**
 * PATCH: nothing is written (the tenant is re-created from the release's environment at every
 * start); values equal to the current ones pass and the current settings are answered, a change
 * is refused with the fields named.
 */
export async function updateRealtimeConfig(
  ctx: AuthedContext,
  ref: string,
  body: z.infer<typeof UpdateRealtimeConfigBody>,
): Promise<RealtimeConfig> {
  const current = await realtimeConfig(ctx, ref);
  const changed = realtimeChanges(body, current);
  if (changed.length > 0) {
    throw badRequest(
      `Not changed: ${changed.join(", ")} ${changed.length === 1 ? "is" : "are"} not managed by SupaManager yet. The project's Realtime runs with the limits its release sets (it re-creates its tenant with them at every start), so a change made here would not last.`,
    );
  }
  return current;
}
