import { eq, sql } from "drizzle-orm";
import { hosts, projects } from "../../db/schema.js";
import type { AppDeps, ServiceContext } from "../../deps.js";
import { projectPorts } from "../fleet/scheduling.js";
import { isOnline, onlineCutoff } from "../fleet/status.js";
import type { HostFacts, ProjectRow } from "./model.js";
import { projectUrl, type Reachability } from "./urls.js";

/** The columns of a project's host that its facts are built from. */
export const hostFactColumns = {
  lastSeenAt: hosts.lastSeenAt,
  removedAt: hosts.removedAt,
  bindAddress: hosts.bindAddress,
  reachability: hosts.reachability,
};

interface HostRowFacts {
  lastSeenAt: Date | null;
  removedAt: Date | null;
  bindAddress: string;
  reachability: Reachability;
}

/** Facts of project `ref` on `host` with its reserved `ports` (liveness, address, public URL). */
export function hostFacts(
  deps: Pick<AppDeps, "config" | "clock">,
  ref: string,
  host: HostRowFacts,
  ports: Record<string, number>,
): HostFacts {
  return {
    online: host.removedAt === null && isOnline(host.lastSeenAt, deps),
    bindAddress: host.bindAddress,
    reachability: host.reachability,
    ports,
    url: projectUrl(deps.config, ref, host, ports.gateway),
  };
}

/** The host facts of one project (its host's liveness, bind address and the project's ports). */
export async function hostFactsFor(ctx: ServiceContext, row: ProjectRow): Promise<HostFacts | undefined> {
  if (row.hostId === null) return undefined;
  const [host] = await ctx.db.select(hostFactColumns).from(hosts).where(eq(hosts.id, row.hostId)).limit(1);
  if (!host) return undefined;
  return hostFacts(ctx.deps, row.ref, host, await projectPorts(ctx.db, row.ref));
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

/**
 * Liveness of a joined host row, for list items (ports are not read there, so the URL is only
 * known when it comes from a domain).
 */
export function listHostFacts(
  ctx: ServiceContext,
  ref: string,
  joined: { [K in keyof HostRowFacts]: HostRowFacts[K] | null } | null,
): HostFacts | undefined {
  if (!joined || joined.bindAddress === null || joined.reachability === null) return undefined;
  return hostFacts(
    ctx.deps,
    ref,
    { ...joined, bindAddress: joined.bindAddress, reachability: joined.reachability },
    {},
  );
}
