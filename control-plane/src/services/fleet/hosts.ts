import type { IngressStatus } from "@supamanager/shared";
import { and, eq, gt, inArray, isNull, ne, sql } from "drizzle-orm";
import { hosts, joinTokens, portReservations, projects } from "../../db/schema.js";
import type { AuthedContext, ServiceContext } from "../../deps.js";
import { ApiError, conflict, forbidden, notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { projectUrl, type Reachability } from "../projects/urls.js";
import { type AgentStanding, agentStanding } from "./agent-version.js";
import {
  looksLikeJoinToken,
  newHostCredential,
  newHostId,
  newJoinToken,
  newJoinTokenId,
  secretHash,
} from "./credentials.js";
import { CLOSE } from "./hub.js";
import type { HostRow } from "./scheduling.js";
import { isOnline } from "./status.js";

/** Fleet operations are for the instance admin only (users.is_instance_admin). */
export function assertInstanceAdmin(ctx: AuthedContext): void {
  if (!ctx.actor.isInstanceAdmin) throw forbidden("Only the instance admin can manage the fleet");
}

export interface JoinTokenInput {
  region: string;
  expiresInSeconds: number;
  uses: number;
}

export interface CreatedJoinToken {
  token: string;
  expiresAt: Date;
  region: string;
  uses: number;
}

/** A join token for `region`: random, shown once, stored as a SHA-256 hash. */
export async function createJoinToken(ctx: AuthedContext, input: JoinTokenInput): Promise<CreatedJoinToken> {
  assertInstanceAdmin(ctx);
  return mintJoinToken(ctx, input, ctx.actor);
}

/**
 * A join token the control plane mints for the host agent it starts on its own machine
 * (`npm start`, ADR 0019): no account exists yet on a first start, so no actor; audited as such.
 */
export async function createLocalHostJoinToken(ctx: ServiceContext, input: JoinTokenInput): Promise<CreatedJoinToken> {
  return mintJoinToken(ctx, input, null);
}

/** Whether a host with this id is enrolled (a removed host's credential is void). */
export async function hostExists(ctx: ServiceContext, hostId: string): Promise<boolean> {
  const [row] = await ctx.db.select({ id: hosts.id }).from(hosts).where(eq(hosts.id, hostId)).limit(1);
  return row !== undefined;
}

async function mintJoinToken(
  ctx: ServiceContext,
  input: JoinTokenInput,
  actor: AuthedContext["actor"] | null,
): Promise<CreatedJoinToken> {
  const token = newJoinToken();
  const expiresAt = new Date(ctx.deps.clock.now() + input.expiresInSeconds * 1000);
  const id = newJoinTokenId();
  const tokenHash = await secretHash(token);
  await ctx.db.transaction(async (tx) => {
    await tx.insert(joinTokens).values({
      id,
      tokenHash,
      region: input.region,
      usesRemaining: input.uses,
      createdBy: actor?.userId ?? null,
      expiresAt,
      createdAt: new Date(ctx.deps.clock.now()),
    });
    await recordAudit(tx, ctx.meta, {
      action: "fleet.join_token.create",
      outcome: "success",
      ...(actor ? { actor } : {}),
      target: id,
      details: {
        region: input.region,
        uses: input.uses,
        expires_at: expiresAt.toISOString(),
        ...(actor ? {} : { local_host: true }),
      },
    });
  });
  return { token, expiresAt, region: input.region, uses: input.uses };
}

export interface JoinInput {
  token: string;
  hostname: string;
  bindAddress?: string | undefined;
  /** How apps reach the host's projects (ADR 0035); `direct` unless the agent says otherwise. */
  reachability?: Reachability | undefined;
}

export interface JoinedHost {
  hostId: string;
  credential: string;
  region: string;
}

const BAD_TOKEN = "Join token is invalid, expired or used up; ask the instance admin for a new one";

/**
 * Exchange a join token for a host identity and credential. The token IS the authentication:
 * looked up by hash, used atomically (uses_remaining decremented only while > 0 and unexpired),
 * so two agents racing for a single-use token get one host between them.
 */
export async function joinHost(ctx: ServiceContext, input: JoinInput): Promise<JoinedHost> {
  if (!looksLikeJoinToken(input.token)) throw new ApiError("unauthorized", BAD_TOKEN);
  const tokenHash = await secretHash(input.token);
  const now = new Date(ctx.deps.clock.now());
  const credential = newHostCredential();
  const credentialHash = await secretHash(credential);
  const hostId = newHostId();
  return ctx.db.transaction(async (tx) => {
    const [used] = await tx
      .update(joinTokens)
      .set({ usesRemaining: sql`${joinTokens.usesRemaining} - 1` })
      .where(and(eq(joinTokens.tokenHash, tokenHash), gt(joinTokens.usesRemaining, 0), gt(joinTokens.expiresAt, now)))
      .returning({ id: joinTokens.id, region: joinTokens.region });
    if (!used) throw new ApiError("unauthorized", BAD_TOKEN);
    await tx.insert(hosts).values({
      id: hostId,
      name: input.hostname,
      region: used.region,
      credentialHash,
      bindAddress: input.bindAddress ?? "127.0.0.1",
      reachability: input.reachability ?? "direct",
      createdAt: now,
    });
    await recordAudit(tx, ctx.meta, {
      action: "fleet.host.join",
      outcome: "success",
      target: hostId,
      details: {
        join_token: used.id,
        region: used.region,
        hostname: input.hostname,
        reachability: input.reachability ?? "direct",
      },
    });
    return { hostId, credential, region: used.region };
  });
}

export interface HostView {
  id: string;
  name: string;
  region: string;
  status: "online" | "offline";
  cordoned: boolean;
  draining: boolean;
  bindAddress: string;
  reachability: Reachability;
  /** The host ingress's state as the agent last reported it (ADR 0036). */
  ingress: IngressStatus | null;
  agentVersion: string | null;
  /** The protocol version of the agent's last hello. */
  agentProtocol: number | null;
  /** The agent version the control plane wants (SUPAMANAGER_AGENT_VERSION), if any. */
  agentWantedVersion: string | null;
  /** How the agent stands against it (agent-version.ts). */
  agent: AgentStanding;
  compose: string | null;
  capacity: {
    cpus: number | null;
    memTotalBytes: number | null;
    memFreeBytes: number | null;
    memReservedBytes: number | null;
    load1: number | null;
  };
  projectCount: number;
  /** The host's projects (not REMOVED) with their public URLs (services/projects/urls.ts). */
  projects: { ref: string; name: string; url: string | null }[];
  lastSeenAt: Date | null;
  createdAt: Date;
}

function hostView(ctx: ServiceContext, row: HostRow, placed: HostProject[]): HostView {
  return {
    id: row.id,
    name: row.name,
    region: row.region,
    status: isOnline(row.lastSeenAt, ctx.deps) ? "online" : "offline",
    cordoned: row.cordoned,
    draining: row.draining,
    bindAddress: row.bindAddress,
    reachability: row.reachability,
    ingress: row.ingress ?? null,
    agentVersion: row.agentVersion,
    agentProtocol: row.agentProtocol,
    agentWantedVersion: ctx.deps.config.fleet.agentUpdate?.version ?? null,
    agent: agentStanding({
      version: row.agentVersion,
      protocol: row.agentProtocol,
      wanted: ctx.deps.config.fleet.agentUpdate?.version,
      failure: row.agentUpdateFailure,
    }),
    compose: row.compose,
    capacity: {
      cpus: row.cpus,
      memTotalBytes: row.memTotalBytes,
      memFreeBytes: row.memFreeBytes,
      memReservedBytes: row.memReservedBytes,
      load1: row.load1 === null ? null : Number(row.load1),
    },
    projectCount: placed.length,
    projects: placed
      .filter((p) => p.hostId === row.id)
      .map((p) => ({ ref: p.ref, name: p.name, url: projectUrl(ctx.deps.config, p.ref, row, p.gatewayPort) })),
    lastSeenAt: row.lastSeenAt,
    createdAt: row.createdAt,
  };
}

interface HostProject {
  hostId: string;
  ref: string;
  name: string;
  gatewayPort: number | null;
}

/** The projects (not REMOVED) of the given hosts, with their gateway ports, by host id. */
async function hostProjects(ctx: ServiceContext, hostIds: string[]): Promise<Map<string, HostProject[]>> {
  const out = new Map<string, HostProject[]>(hostIds.map((id) => [id, []]));
  if (hostIds.length === 0) return out;
  const rows = await ctx.db
    .select({
      hostId: projects.hostId,
      ref: projects.ref,
      name: projects.name,
      gatewayPort: portReservations.port,
    })
    .from(projects)
    .leftJoin(
      portReservations,
      and(eq(portReservations.projectRef, projects.ref), sql`${portReservations.service} like '%:gateway'`),
    )
    .where(and(inArray(projects.hostId, hostIds), ne(projects.status, "REMOVED")))
    .orderBy(projects.ref);
  for (const r of rows) {
    if (r.hostId !== null) out.get(r.hostId)?.push({ ...r, hostId: r.hostId });
  }
  return out;
}

/** Every enrolled host (removed ones are not listed). */
export async function listHosts(ctx: AuthedContext): Promise<HostView[]> {
  assertInstanceAdmin(ctx);
  const rows = await ctx.db
    .select()
    .from(hosts)
    .where(isNull(hosts.removedAt))
    .orderBy(hosts.region, hosts.name, hosts.id);
  const placed = await hostProjects(
    ctx,
    rows.map((r) => r.id),
  );
  return rows.map((r) => hostView(ctx, r, placed.get(r.id) ?? []));
}

async function liveHost(ctx: AuthedContext, id: string): Promise<HostRow> {
  const [row] = await ctx.db
    .select()
    .from(hosts)
    .where(and(eq(hosts.id, id), isNull(hosts.removedAt)))
    .limit(1);
  if (!row) throw notFound(`Host ${id} not found`);
  return row;
}

export type HostFlagChange = "cordon" | "uncordon" | "drain";

/**
 * cordon: no new projects are placed on the host. uncordon: undo cordon and drain. drain:
 * cordon + mark draining (no new projects; existing projects stay where they are — moving them
 * to another host is future work).
 */
export async function changeHostFlags(ctx: AuthedContext, id: string, change: HostFlagChange): Promise<HostView> {
  assertInstanceAdmin(ctx);
  await liveHost(ctx, id);
  const set =
    change === "cordon"
      ? { cordoned: true }
      : change === "drain"
        ? { cordoned: true, draining: true }
        : { cordoned: false, draining: false };
  const row = await ctx.db.transaction(async (tx) => {
    const [updated] = await tx
      .update(hosts)
      .set(set)
      .where(and(eq(hosts.id, id), isNull(hosts.removedAt)))
      .returning();
    if (!updated) throw notFound(`Host ${id} not found`);
    await recordAudit(tx, ctx.meta, {
      action: `fleet.host.${change}`,
      outcome: "success",
      actor: ctx.actor,
      target: id,
      details: { name: updated.name, region: updated.region },
    });
    return updated;
  });
  return hostView(ctx, row, (await hostProjects(ctx, [id])).get(id) ?? []);
}

/**
 * Set how apps reach a host's projects (ADR 0035). The host's projects get a new spec version,
 * so their stacks are rendered again with the new public URL (GoTrue's API_EXTERNAL_URL,
 * Storage's public URL), and the agent's control connection is closed so that it reconnects
 * and learns from its welcome whether to open the tunnel.
 */
export async function setHostReachability(
  ctx: AuthedContext,
  id: string,
  reachability: Reachability,
): Promise<HostView> {
  assertInstanceAdmin(ctx);
  const before = await liveHost(ctx, id);
  if (before.reachability === reachability) {
    return hostView(ctx, before, (await hostProjects(ctx, [id])).get(id) ?? []);
  }
  const row = await ctx.db.transaction(async (tx) => {
    const [updated] = await tx
      .update(hosts)
      .set({ reachability })
      .where(and(eq(hosts.id, id), isNull(hosts.removedAt)))
      .returning();
    if (!updated) throw notFound(`Host ${id} not found`);
    await tx
      .update(projects)
      .set({ specVersion: sql`${projects.specVersion} + 1`, updatedAt: new Date(ctx.deps.clock.now()) })
      .where(and(eq(projects.hostId, id), ne(projects.status, "REMOVED"), ne(projects.desiredState, "deleted")));
    await recordAudit(tx, ctx.meta, {
      action: "fleet.host.reachability",
      outcome: "success",
      actor: ctx.actor,
      target: id,
      details: { name: updated.name, from: before.reachability, to: reachability },
    });
    return updated;
  });
  await ctx.deps.hub.disconnect(id, CLOSE.reconfigured, "host reachability changed");
  return hostView(ctx, row, (await hostProjects(ctx, [id])).get(id) ?? []);
}

/**
 * Remove a host: its credential is revoked (hash cleared, removed_at set; the row stays for the
 * audit trail) and its socket closed. Refused while projects other than REMOVED remain on it,
 * unless `force` (then those projects are left pointing at a removed host: they read UNKNOWN
 * and their lifecycle requests wait forever — the operator's explicit choice).
 */
export async function removeHost(ctx: AuthedContext, id: string, force: boolean): Promise<void> {
  assertInstanceAdmin(ctx);
  await ctx.db.transaction(async (tx) => {
    const [host] = await tx
      .select()
      .from(hosts)
      .where(and(eq(hosts.id, id), isNull(hosts.removedAt)))
      .for("update")
      .limit(1);
    if (!host) throw notFound(`Host ${id} not found`);
    const [{ n } = { n: 0 }] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(projects)
      .where(and(eq(projects.hostId, id), ne(projects.status, "REMOVED")));
    if (n > 0 && !force) {
      throw conflict(`Host ${id} still has ${n} project(s); delete them first or pass ?force=true`);
    }
    await tx
      .update(hosts)
      .set({ credentialHash: null, removedAt: new Date(ctx.deps.clock.now()), cordoned: true })
      .where(eq(hosts.id, id));
    await recordAudit(tx, ctx.meta, {
      action: "fleet.host.remove",
      outcome: "success",
      actor: ctx.actor,
      target: id,
      details: { name: host.name, region: host.region, force, projects: n },
    });
  });
  await ctx.deps.hub.disconnect(id, CLOSE.removed, "host removed");
}

export interface RegionView {
  code: string;
  hosts: number;
  onlineHosts: number;
  schedulableHosts: number;
}

/** Regions are the regions of enrolled hosts (instance admin view). */
export async function listRegions(ctx: AuthedContext): Promise<RegionView[]> {
  assertInstanceAdmin(ctx);
  return regionSummary(ctx);
}

/** Every region with at least one enrolled host, with host counts (no host details). */
export async function regionSummary(ctx: ServiceContext): Promise<RegionView[]> {
  const rows = await ctx.db
    .select({
      region: hosts.region,
      lastSeenAt: hosts.lastSeenAt,
      cordoned: hosts.cordoned,
      draining: hosts.draining,
    })
    .from(hosts)
    .where(isNull(hosts.removedAt));
  const byRegion = new Map<string, RegionView>();
  for (const r of rows) {
    const v = byRegion.get(r.region) ?? { code: r.region, hosts: 0, onlineHosts: 0, schedulableHosts: 0 };
    v.hosts++;
    if (isOnline(r.lastSeenAt, ctx.deps)) {
      v.onlineHosts++;
      if (!r.cordoned && !r.draining) v.schedulableHosts++;
    }
    byRegion.set(r.region, v);
  }
  return [...byRegion.values()].sort((a, b) => a.code.localeCompare(b.code));
}
