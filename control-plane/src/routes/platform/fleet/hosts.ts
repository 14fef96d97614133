import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, query, shape } from "../../../lib/validate.js";
import {
  changeHostFlags,
  type HostFlagChange,
  type HostView,
  listHosts,
  listRegions,
  removeHost,
  setHostReachability,
} from "../../../services/fleet/hosts.js";
import { REACHABILITY_MODES } from "../../../services/projects/urls.js";

const HostId = z.string().regex(/^host_[a-z0-9]{20}$/);

export const HostResponse = z.object({
  id: z.string(),
  name: z.string(),
  region: z.string(),
  status: z.enum(["online", "offline"]),
  cordoned: z.boolean(),
  draining: z.boolean(),
  bind_address: z.string(),
  /** How apps reach the host's projects: direct, ingress or tunnel (ADR 0035). */
  reachability: z.enum(REACHABILITY_MODES),
  /**
   * The host ingress as its agent last reported it (ADR 0036): `off`, `running` (serving
   * `projects` routes on `port`) or `error` (`message` says why); null before any report.
   */
  ingress: z
    .object({
      state: z.enum(["off", "running", "error"]),
      projects: z.number(),
      port: z.number().optional(),
      message: z.string().optional(),
    })
    .nullable(),
  agent_version: z.string().nullable(),
  /** The protocol version the agent speaks; the control plane serves its own and the one before. */
  agent_protocol: z.number().nullable(),
  /** The agent version the control plane wants on every host (ADR 0040); null: none set. */
  agent_wanted_version: z.string().nullable(),
  /** current, update_pending, update_failed, behind (previous protocol) or unknown (never connected). */
  agent_status: z.enum(["current", "update_pending", "update_failed", "behind", "unknown"]),
  /** The host should get another agent (any status but current and unknown). */
  agent_behind: z.boolean(),
  /** Why it is not current: what runs, what is wanted, why an update failed. */
  agent_status_reason: z.string().nullable(),
  compose: z.string().nullable(),
  capacity: z.object({
    cpus: z.number().nullable(),
    mem_total_bytes: z.number().nullable(),
    mem_free_bytes: z.number().nullable(),
    mem_reserved_bytes: z.number().nullable(),
    load1: z.number().nullable(),
  }),
  project_count: z.number(),
  /** The host's projects with their public URLs (null until the project has one). */
  projects: z.array(z.object({ ref: z.string(), name: z.string(), url: z.string().nullable() })),
  last_seen_at: z.string().nullable(),
  created_at: z.string(),
});

function hostResponse(h: HostView): z.output<typeof HostResponse> {
  return shape(HostResponse, {
    id: h.id,
    name: h.name,
    region: h.region,
    status: h.status,
    cordoned: h.cordoned,
    draining: h.draining,
    bind_address: h.bindAddress,
    reachability: h.reachability,
    ingress: h.ingress,
    agent_version: h.agentVersion,
    agent_protocol: h.agentProtocol,
    agent_wanted_version: h.agentWantedVersion,
    agent_status: h.agent.status,
    agent_behind: h.agent.behind,
    agent_status_reason: h.agent.reason,
    compose: h.compose,
    capacity: {
      cpus: h.capacity.cpus,
      mem_total_bytes: h.capacity.memTotalBytes,
      mem_free_bytes: h.capacity.memFreeBytes,
      mem_reserved_bytes: h.capacity.memReservedBytes,
      load1: h.capacity.load1,
    },
    project_count: h.projectCount,
    projects: h.projects,
    last_seen_at: h.lastSeenAt?.toISOString() ?? null,
    created_at: h.createdAt.toISOString(),
  });
}

/** GET /platform/fleet/hosts — every enrolled host (removed hosts are not listed). */
export async function listHostsRoute(c: Context<AppEnv>): Promise<Response> {
  return c.json((await listHosts(authed(c))).map(hostResponse));
}

/** POST /platform/fleet/hosts/:id/{cordon,uncordon,drain} */
export function hostFlagRoute(change: HostFlagChange) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const ctx = authed(c);
    const id = param(c, "id", HostId, "Host");
    return c.json(hostResponse(await changeHostFlags(ctx, id, change)));
  };
}

const HostPatchBody = z.strictObject({
  reachability: z.enum(REACHABILITY_MODES, {
    error: `reachability must be one of ${REACHABILITY_MODES.join(", ")}`,
  }),
});

/** PATCH /platform/fleet/hosts/:id — the host's reachability mode ({reachability}). */
export async function patchHostRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const id = param(c, "id", HostId, "Host");
  const body = await jsonBody(c, HostPatchBody);
  return c.json(hostResponse(await setHostReachability(ctx, id, body.reachability)));
}

const RemoveQuery = z.object({ force: z.enum(["true", "false"]).default("false") });

/** DELETE /platform/fleet/hosts/:id[?force=true] — revoke the credential and close the socket. */
export async function removeHostRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const id = param(c, "id", HostId, "Host");
  const q = query(c, RemoveQuery);
  await removeHost(ctx, id, q.force === "true");
  return c.json({ id, removed: true });
}

const RegionResponse = z.object({
  code: z.string(),
  hosts: z.number(),
  online_hosts: z.number(),
  schedulable_hosts: z.number(),
});

/** GET /platform/fleet/regions — regions of enrolled hosts, with host counts. */
export async function listRegionsRoute(c: Context<AppEnv>): Promise<Response> {
  const regions = await listRegions(authed(c));
  return c.json(
    regions.map((r) =>
      shape(RegionResponse, {
        code: r.code,
        hosts: r.hosts,
        online_hosts: r.onlineHosts,
        schedulable_hosts: r.schedulableHosts,
      }),
    ),
  );
}
