import { JobProgress } from "@supamanager/shared";
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { notFound } from "../../errors.js";
import { serviceContext } from "../../lib/context.js";
import { jsonBody, param } from "../../lib/validate.js";
import { bearerToken } from "../../middleware/auth.js";
import { authenticateHost } from "../../services/fleet/authenticate.js";
import { recordUpgradeProgress } from "../../services/upgrades/index.js";

/**
 * POST /agent/v1/jobs/{jobId}/progress — the step a running `upgrade` job of the calling host has
 * reached (host credential, like /connect), shown as the upgrade's `step` (ADR 0037). Best effort
 * for the agent: the job's result, not its progress, decides how the upgrade ends.
 */
export async function jobProgressRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = serviceContext(c);
  const host = await authenticateHost(ctx, bearerToken(c.req.header("authorization")));
  const jobId = param(c, "jobId", z.string().regex(/^job_[A-Za-z0-9-]{1,64}$/), "Job");
  const body = await jsonBody(c, JobProgress);
  if (!(await recordUpgradeProgress(ctx.deps, host.id, jobId, body.step))) {
    throw notFound(`Job ${jobId} is not an upgrade of this host`);
  }
  return c.body(null, 204);
}
