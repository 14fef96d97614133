import { DOCKER_STATS_SERVICE, type DockerContainerStats } from "@supamanager/shared";
import { z } from "zod";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { callService } from "../pg-meta/target.js";
import { placedProject } from "./container-logs.js";

/** How long the agent may take: Docker samples each container for about a second. */
const STATS_TIMEOUT_MS = 20_000;

const StatsBody = z.object({
  containers: z
    .array(
      z.object({
        service: z.string().max(64),
        cpuPercent: z.number().nonnegative(),
        memoryBytes: z.number().nonnegative(),
        memoryLimitBytes: z.number().nonnegative(),
      }),
    )
    .max(100),
  hostCpus: z.number().int().positive(),
});

export interface ProjectStats {
  containers: DockerContainerStats[];
  hostCpus: number;
}

/**
 * One resource sample of the project's running containers, taken by its host agent (the
 * reserved docker-stats rpc, docs/agent.md). Any member may read it; 503 when the host is
 * offline; an agent that predates docker-stats answers `refused` (503 saying so).
 */
export async function containerStats(ctx: AuthedContext, ref: string): Promise<ProjectStats> {
  const target = await placedProject(ctx, ref);
  const result = await callService(ctx, target, {
    ref,
    service: DOCKER_STATS_SERVICE,
    method: "GET",
    path: "/stats",
    headers: {},
    timeoutMs: STATS_TIMEOUT_MS,
  });
  const body = StatsBody.safeParse(result.body);
  if (result.status !== 200 || !body.success) {
    throw new ApiError("bad_gateway", "The project's host answered the stats request with something unexpected");
  }
  return body.data;
}
