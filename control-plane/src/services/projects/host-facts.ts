import { and, eq, ne, sql } from "drizzle-orm";
import { prepared } from "../../db/prepared.js";
import { hosts, organizations, orgMembers, portReservations, projects } from "../../db/schema.js";
import type { AppDeps, AuthedContext, ServiceContext } from "../../deps.js";
import { notFound } from "../../errors.js";
import { projectPorts } from "../fleet/scheduling.js";
import { isOnline, onlineCutoff } from "../fleet/status.js";
import { assertCan, type ProjectMembership } from "../organizations/access.js";
import type { Action } from "../permissions/matrix.js";
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

/** Reserved ports by release port name, as `projectPorts` returns them, from `service → port` pairs. */
function portsByName(pairs: Record<string, number> | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [service, port] of Object.entries(pairs ?? {})) out[service.split(":")[1] ?? service] = Number(port);
  return out;
}

/** The project's host row as projectWithHostForMember reads it. */
export interface JoinedHost extends HostRowFacts {
  id: string;
  name: string;
}

/**
 * projectForMember (organizations/access.ts: member with `action`, else 404/403; REMOVED is gone)
 * and the project's host facts in ONE statement: the project, its organization, the caller's
 * role, its host's liveness and (with `ports`) its reserved ports. Every join is by key, so the
 * cost does not grow with the fleet or the organization (ADR 0033).
 */
export async function projectWithHostForMember(
  ctx: AuthedContext,
  ref: string,
  action: Action,
  opts: { ports: boolean },
): Promise<ProjectMembership & { host: HostFacts | undefined; hostRow: JoinedHost | null }> {
  const statement = prepared(
    ctx.db,
    opts.ports ? "sm_project_host_ports_for_member" : "sm_project_host_for_member",
    (db, name) => {
      const ports = opts.ports
        ? sql<Record<
            string,
            number
          > | null>`(select json_object_agg(${portReservations.service}, ${portReservations.port})
          from ${portReservations} where ${portReservations.projectRef} = ${projects.ref})`
        : sql<null>`null`;
      return db
        .select({
          project: projects,
          org: organizations,
          role: orgMembers.role,
          host: { id: hosts.id, name: hosts.name, ...hostFactColumns },
          ports,
        })
        .from(projects)
        .innerJoin(organizations, eq(organizations.id, projects.orgId))
        .innerJoin(
          orgMembers,
          and(eq(orgMembers.orgId, projects.orgId), eq(orgMembers.userId, sql.placeholder("userId"))),
        )
        .leftJoin(hosts, eq(hosts.id, projects.hostId))
        .where(and(eq(projects.ref, sql.placeholder("ref")), ne(projects.status, "REMOVED")))
        .limit(1)
        .prepare(name);
    },
  );
  const [row] = await statement.execute({ userId: ctx.actor.userId, ref });
  if (!row) throw notFound(`Project ${ref} not found`);
  assertCan(row.role, action);
  const hostRow = row.project.hostId !== null && row.host?.id ? (row.host as JoinedHost) : null;
  const host = hostRow ? hostFacts(ctx.deps, row.project.ref, hostRow, portsByName(row.ports)) : undefined;
  return { project: row.project, org: row.org, role: row.role, host, hostRow };
}
