import { DOCKER_LOGS_MAX_TAIL } from "@supamanager/shared";
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, query, shape } from "../../../lib/validate.js";
import { containerLogs } from "../../../services/logs/container-logs.js";
import { RefParam } from "./schemas.js";

const LogsQuery = z.object({
  service: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/i, "service must be a Compose service name, e.g. db")
    .optional(),
  tail: z
    .string()
    .regex(/^\d{1,4}$/, `tail must be an integer from 1 to ${DOCKER_LOGS_MAX_TAIL}`)
    .transform(Number)
    .pipe(z.number().int().min(1).max(DOCKER_LOGS_MAX_TAIL))
    .default(100),
});

export const ProjectLogsResponse = z.object({
  ref: z.string(),
  service: z.string().optional(),
  lines: z.array(
    z.object({
      service: z.string(),
      stream: z.enum(["stdout", "stderr"]),
      text: z.string(),
      timestamp: z.string().optional(),
    }),
  ),
});

/**
 * GET /platform/projects/:ref/logs?service=&tail= → the last lines of the project's containers,
 * oldest first (any member, read_only included; 503 when the host is offline).
 */
export async function projectLogsRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = param(c, "ref", RefParam, "Project");
  const q = query(c, LogsQuery);
  const logs = await containerLogs(authed(c), ref, { service: q.service, tail: q.tail });
  return c.json(shape(ProjectLogsResponse, logs));
}
