import { eq, sql } from "drizzle-orm";
import { hosts, projects } from "../../db/schema.js";
import type { ServiceContext } from "../../deps.js";
import { projectPorts } from "../fleet/scheduling.js";
import { isOnline, onlineCutoff } from "../fleet/status.js";
import type { HostFacts, ProjectRow } from "./model.js";

/** The host facts of one project (its host's liveness, bind address and the project's ports). */
export async function hostFactsFor(ctx: ServiceContext, row: ProjectRow): Promise<HostFacts | undefined> {
  if (row.hostId === null) return undefined;
  const [host] = await ctx.db
    .select({ lastSeenAt: hosts.lastSeenAt, removedAt: hosts.removedAt, bindAddress: hosts.bindAddress })
    .from(hosts)
    .where(eq(hosts.id, row.hostId))
    .limit(1);
  if (!host) return undefined;
  return {
    online: host.removedAt === null && isOnline(host.lastSeenAt, ctx.deps),
    bindAddress: host.bindAddress,
    ports: await projectPorts(ctx.db, row.ref),
  };
}

/**
 * The status readers see, in SQL (for list filters): ACTIVE_* on an offline or removed host
 * reads UNKNOWN. Needs `hosts` left-joined on projects.host_id.
 */
export function effectiveStatusSql(ctx: ServiceContext) {
  const cutoff = onlineCutoff(ctx.deps);
  return sql<string>`(case when ${projects.status} in ('ACTIVE_HEALTHY', 'ACTIVE_UNHEALTHY')
    and ${projects.hostId} is not null
    and (${hosts.lastSeenAt} is null or ${hosts.lastSeenAt} < ${cutoff} or ${hosts.removedAt} is not null)
    then 'UNKNOWN' else ${projects.status} end)`;
}

/** Liveness of a joined host row, for list items (ports are not needed there). */
export function listHostFacts(
  ctx: ServiceContext,
  joined: { lastSeenAt: Date | null; removedAt: Date | null; bindAddress: string | null } | null,
): HostFacts | undefined {
  if (!joined || joined.bindAddress === null) return undefined;
  return {
    online: joined.removedAt === null && isOnline(joined.lastSeenAt, ctx.deps),
    bindAddress: joined.bindAddress,
    ports: {},
  };
}
