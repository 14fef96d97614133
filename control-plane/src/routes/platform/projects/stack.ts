import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, shape } from "../../../lib/validate.js";
import { STACK_SERVICES } from "../../../services/projects/release-services.js";
import { projectStack } from "../../../services/projects/stack.js";
import { RefParam } from "./schemas.js";

const Services = z.object(
  Object.fromEntries(Object.keys(STACK_SERVICES).map((s) => [s, z.boolean()])) as Record<
    keyof typeof STACK_SERVICES,
    z.ZodBoolean
  >,
);

export const ProjectStackResponse = z.object({
  ref: z.string(),
  status: z.string(),
  release: z.string(),
  parts: z.array(z.string()).nullable(),
  services: Services,
  /** The project's public URL (its gateway; services/projects/urls.ts), as every URL handed out; null until placed. */
  api_url: z.string().nullable(),
});

/**
 * GET /platform/projects/:ref/stack (SupaManager) → the project's release, parts, and which
 * Supabase services it runs, plus its gateway URL. Any member (nothing secret).
 */
export async function projectStackRoute(c: Context<AppEnv>): Promise<Response> {
  const s = await projectStack(authed(c), param(c, "ref", RefParam, "Project"));
  return c.json(
    shape(ProjectStackResponse, {
      ref: s.project.ref,
      status: s.project.status,
      release: s.release,
      parts: s.parts,
      services: s.services,
      api_url: s.project.endpoints?.url ?? null,
    }),
  );
}
