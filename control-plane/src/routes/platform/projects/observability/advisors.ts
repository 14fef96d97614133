import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../../deps.js";
import { authed } from "../../../../lib/context.js";
import { param, shape } from "../../../../lib/validate.js";
import { Lint, runLints } from "../../../../services/advisors/lints.js";
import { projectForMember } from "../../../../services/organizations/access.js";
import { RefParam } from "../schemas.js";
import { API_SCHEMAS } from "../settings.js";

export const RunLintsResponse = z.array(Lint);

/**
 * GET /platform/projects/:ref/run-lints → Studio's Security and Performance Advisors: our own
 * catalog lints run against the project's database through its postgres-meta (services/advisors).
 * The exposed schemas are the ones /config/postgrest reports (the release fixes them).
 */
export async function runLintsRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = param(c, "ref", RefParam, "Project");
  const lints = await runLints(authed(c), ref, API_SCHEMAS.split(","));
  return c.json(shape(RunLintsResponse, lints));
}

/**
 * GET /platform/projects/:ref/notifications/advisor/exceptions — STUB: the Advisors pages list the
 * lint rules a team has dismissed; SupaManager stores none, so the list is empty (creating a rule
 * falls through to the JSON 404 "not supported"). Members only, like every project route.
 */
export async function advisorExceptionsRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = param(c, "ref", RefParam, "Project");
  await projectForMember(authed(c), ref, "projects.read");
  return c.json({ exceptions: [] });
}
