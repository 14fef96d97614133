import { and, eq, gte, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { hosts, portReservations, projects } from "../../db/schema.js";
import type { AppDeps } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { COMPUTE_MEMORY_BYTES } from "../projects/model.js";
import { onlineCutoff } from "./status.js";

export type HostRow = typeof hosts.$inferSelect;

/** Memory promised to a host's projects: the sum of their compute sizes' limits (REMOVED excluded). */
const reservedSql = sql<number>`coalesce((
  select sum(case ${projects.computeSize}
    ${sql.join(
      Object.entries(COMPUTE_MEMORY_BYTES).map(([size, bytes]) => sql`when ${size} then ${bytes}::bigint`),
      sql` `,
    )}
    else ${COMPUTE_MEMORY_BYTES.nano}::bigint end)
  from ${projects} where ${projects.hostId} = ${hosts.id} and ${projects.status} <> 'REMOVED'
), 0)`;

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${Math.floor(bytes / MiB)} MiB`;

/**
 * Pick the host for a new project: online, not cordoned, not draining, not removed, in `region`
 * (any region when undefined), with the most free capacity: its total memory (as its agent
 * reports it) minus the compute-size memory promised to its projects minus the host reserve
 * (SUPAMANAGER_HOST_MEMORY_RESERVE_MIB). No host at all → 409 naming the region; a best host
 * whose free capacity is below `needBytes` (the new project's compute size) → 409 naming that
 * capacity, so the caller can pick a smaller size or another region.
 */
export async function placeProject(
  db: Executor,
  deps: Pick<AppDeps, "clock" | "config">,
  region: string | undefined,
  need?: { bytes: number; size: string },
): Promise<HostRow> {
  const total = sql`coalesce(${hosts.memTotalBytes}, ${hosts.memFreeBytes}, 0)`;
  const free = sql<number>`(${total} - ${reservedSql} - ${deps.config.fleet.hostReserveBytes}::bigint)`;
  const [row] = await db
    .select({ host: hosts, free })
    .from(hosts)
    .where(
      and(
        isNull(hosts.removedAt),
        isNotNull(hosts.credentialHash),
        eq(hosts.cordoned, false),
        eq(hosts.draining, false),
        gte(hosts.lastSeenAt, onlineCutoff(deps)),
        region === undefined ? undefined : eq(hosts.region, region),
      ),
    )
    .orderBy(sql`${free} desc`, hosts.id)
    .limit(1);
  if (!row) {
    throw new ApiError(
      "conflict",
      region === undefined
        ? "No online host can take a new project (every host is offline, cordoned or draining)"
        : `No online host in region ${region} can take a new project (hosts there are offline, cordoned or draining)`,
    );
  }
  const best = Number(row.free);
  if (need && best < need.bytes) {
    const where = region === undefined ? "in any region" : `in region ${region}`;
    throw new ApiError(
      "conflict",
      `No host ${where} has ${mib(need.bytes)} free for a ${need.size} project: the most free capacity ${where} is ${mib(Math.max(0, best))} (host ${row.host.id}). Choose a smaller compute size, another region, or add a host.`,
    );
  }
  return row.host;
}

/** The regions that have at least one enrolled (not removed) host. */
export async function enrolledRegions(db: Executor): Promise<string[]> {
  const rows = await db
    .selectDistinct({ region: hosts.region })
    .from(hosts)
    .where(isNull(hosts.removedAt))
    .orderBy(hosts.region);
  return rows.map((r) => r.region);
}

const PORT_ATTEMPTS = 20;

/**
 * Reserve one host port per `names` entry for `ref`, unique per host (the primary key
 * (host_id, port) guarantees it). Candidates start at a random offset in the range so that
 * concurrent creates rarely collide; a collision (ON CONFLICT DO NOTHING) just tries the next.
 */
export async function reservePorts(
  db: Executor,
  deps: Pick<AppDeps, "config">,
  hostId: string,
  ref: string,
  wanted: { service: string; name: string }[],
): Promise<Record<string, number>> {
  const { first, last } = deps.config.fleet.portRange;
  const size = last - first + 1;
  // One reservation at a time per host (until this transaction ends): concurrent creates that
  // each grabbed a port the other then wanted would otherwise deadlock in PostgreSQL.
  await db.execute(sql`select pg_advisory_xact_lock(hashtext(${`ports:${hostId}`}))`);
  const taken = new Set(
    (
      await db.select({ port: portReservations.port }).from(portReservations).where(eq(portReservations.hostId, hostId))
    ).map((r) => r.port),
  );
  const out: Record<string, number> = {};
  let cursor = Math.floor(Math.random() * size);
  for (const want of wanted) {
    let reserved: number | undefined;
    for (let attempt = 0, scanned = 0; attempt < PORT_ATTEMPTS && scanned < size; scanned++) {
      const port = first + (cursor % size);
      cursor++;
      if (taken.has(port)) continue;
      attempt++;
      const [row] = await db
        .insert(portReservations)
        .values({ hostId, port, projectRef: ref, service: `${want.service}:${want.name}` })
        .onConflictDoNothing()
        .returning({ port: portReservations.port });
      taken.add(port);
      if (row) {
        reserved = row.port;
        break;
      }
    }
    if (reserved === undefined) {
      throw new ApiError("conflict", `No free port left on host ${hostId} in ${first}-${last}`);
    }
    out[want.name] = reserved;
  }
  return out;
}

/** The ports a project holds, by release port name. */
export async function projectPorts(db: Executor, ref: string): Promise<Record<string, number>> {
  const rows = await db
    .select({ port: portReservations.port, service: portReservations.service })
    .from(portReservations)
    .where(eq(portReservations.projectRef, ref));
  return Object.fromEntries(rows.map((r) => [r.service.split(":")[1] ?? r.service, r.port]));
}

/**
 * Drop the reservations of `ref` whose port names are not in `names`: after an upgrade, the ports
 * only the old release named go back to the host's pool.
 */
export async function keepOnlyPorts(db: Executor, ref: string, names: readonly string[]): Promise<void> {
  const held = await db
    .select({ port: portReservations.port, service: portReservations.service })
    .from(portReservations)
    .where(eq(portReservations.projectRef, ref));
  const drop = held.filter((r) => !names.includes(r.service.split(":")[1] ?? r.service)).map((r) => r.port);
  if (drop.length === 0) return;
  await db
    .delete(portReservations)
    .where(and(eq(portReservations.projectRef, ref), inArray(portReservations.port, drop)));
}

export async function releasePorts(db: Executor, ref: string): Promise<void> {
  await db.delete(portReservations).where(eq(portReservations.projectRef, ref));
}
