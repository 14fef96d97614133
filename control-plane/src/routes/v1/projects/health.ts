import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { ApiError, zodMessage } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { param, shape } from "../../../lib/validate.js";
import { HEALTH_SERVICES, projectData, projectHealth } from "../../../services/secrets/studio-data.js";
import { RefParam } from "../../platform/projects/schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/**
 * `services` (required): repeated (`services=db&services=auth`) or comma-separated;
 * `timeout_ms` (optional, 0 … 10000) is accepted and has no effect: we answer from the agent's
 * last report, never by probing.
 */
export const HealthQuery = z.object({
  services: z
    .array(z.string())
    .transform((all) =>
      all
        .flatMap((s) => s.split(","))
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    )
    .pipe(
      z
        .array(z.enum(HEALTH_SERVICES, { error: `services must be among ${HEALTH_SERVICES.join(", ")}` }))
        .min(1, "services is required")
        .transform((s) => [...new Set(s)]),
    ),
  timeout_ms: z
    .string()
    .regex(/^\d{1,5}$/, "timeout_ms must be a whole number")
    .transform(Number)
    .pipe(z.number().max(10000, "timeout_ms must be at most 10000"))
    .optional(),
});

const ServiceHealth = z.object({
  name: z.enum(HEALTH_SERVICES),
  healthy: z.boolean(),
  status: z.enum(["COMING_UP", "ACTIVE_HEALTHY", "UNHEALTHY"]),
  error: z.string().optional(),
});
export const HealthResponse = z.array(ServiceHealth);

/** GET /v1/projects/:ref/health?services=… → [{name, healthy, status, error?}]. */
export async function projectHealthRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const parsed = HealthQuery.safeParse({
    services: c.req.queries("services") ?? [],
    timeout_ms: c.req.query("timeout_ms"),
  });
  if (!parsed.success) {
    // A non-member learns nothing from input checking: membership is answered first (404).
    await projectData(authed(c), ref);
    throw new ApiError("validation_failed", zodMessage(parsed.error, "query"));
  }
  return c.json(shape(HealthResponse, await projectHealth(authed(c), ref, parsed.data.services)));
}
