import { DOCKER_LOGS_SERVICE, type DockerLogLine } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { hosts } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { hostOffline } from "../fleet/hub.js";
import { projectForMember } from "../organizations/access.js";
import { callService, type ReachableProject } from "../pg-meta/target.js";

/** How long the agent may take to read the logs. */
const LOGS_TIMEOUT_MS = 30_000;

export interface ContainerLogsInput {
  service?: string | undefined;
  tail: number;
}

export interface ContainerLogs {
  ref: string;
  service?: string;
  lines: DockerLogLine[];
}

/**
 * GET /platform/projects/{ref}/logs: the last `tail` lines of the project's containers, read by
 * its host agent (the reserved `docker-logs` rpc, docs/agent.md). Any member with projects.read
 * may read them, read_only included (as on Supabase, where read-only members see the logs
 * explorer). Any status works once the project is placed — a failed project's logs matter most;
 * an unplaced project or a host whose agent is not connected answers 503.
 */
export async function containerLogs(
  ctx: AuthedContext,
  ref: string,
  input: ContainerLogsInput,
): Promise<ContainerLogs> {
  const target = await placedProject(ctx, ref);
  const params = new URLSearchParams({ tail: String(input.tail) });
  if (input.service !== undefined) params.set("service", input.service);
  const result = await callService(ctx, target, {
    ref,
    service: DOCKER_LOGS_SERVICE,
    method: "GET",
    path: `/logs?${params}`,
    headers: {},
    timeoutMs: LOGS_TIMEOUT_MS,
  });
  const lines = parseLines(result.status, result.body);
  return { ref, ...(input.service !== undefined ? { service: input.service } : {}), lines };
}

/**
 * The project as a member (projects.read) may reach it on its host, in any status: what the
 * agent's own rpc services (docker-logs, docker-stats) need. Unplaced, or its host's agent not
 * connected: 503.
 */
export async function placedProject(ctx: AuthedContext, ref: string): Promise<ReachableProject> {
  const { project, role } = await projectForMember(ctx, ref, "projects.read");
  if (!project.hostId) throw hostOffline();
  const [host] = await ctx.db
    .select({
      id: hosts.id,
      name: hosts.name,
      bindAddress: hosts.bindAddress,
      removedAt: hosts.removedAt,
      lastSeenAt: hosts.lastSeenAt,
    })
    .from(hosts)
    .where(eq(hosts.id, project.hostId))
    .limit(1);
  if (!host) throw hostOffline();
  if (host.removedAt || !(await ctx.deps.hub.isConnected(host.id))) {
    throw hostOffline({
      name: host.name,
      lastSeenAt: host.lastSeenAt,
      removed: host.removedAt !== null,
      now: ctx.deps.clock.now(),
    });
  }
  // callService only uses hostId; the release is not needed by the agent's own services.
  return { project, role, hostId: host.id, bindAddress: host.bindAddress } as ReachableProject;
}

/** The agent's answer, re-built field by field (never passed through as is). */
function parseLines(status: number, body: unknown): DockerLogLine[] {
  const raw = (body as { lines?: unknown } | undefined)?.lines;
  if (status !== 200 || !Array.isArray(raw)) {
    throw new ApiError("bad_gateway", "The project's host answered the logs request with something unexpected");
  }
  const lines: DockerLogLine[] = [];
  for (const l of raw as Record<string, unknown>[]) {
    if (!l || typeof l !== "object" || typeof l.service !== "string" || typeof l.text !== "string") continue;
    const line: DockerLogLine = {
      service: l.service,
      stream: l.stream === "stderr" ? "stderr" : "stdout",
      text: l.text,
    };
    if (typeof l.timestamp === "string") line.timestamp = l.timestamp;
    lines.push(line);
  }
  return lines;
}
