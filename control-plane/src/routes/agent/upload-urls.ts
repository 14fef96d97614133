import { UploadUrlsRequest, UploadUrlsResponse } from "@supamanager/shared";
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { serviceContext } from "../../lib/context.js";
import { jsonBody, param, shape } from "../../lib/validate.js";
import { bearerToken } from "../../middleware/auth.js";
import { uploadUrls } from "../../services/backups/index.js";
import { authenticateHost } from "../../services/fleet/authenticate.js";

/**
 * POST /agent/v1/jobs/{jobId}/upload-urls — presigned UploadPart URLs (valid 15 minutes) for an
 * artifact of a running `backup` job of the calling host (host credential, like /connect). The
 * agent asks in batches of up to 100 parts as it streams (ADR 0015).
 */
export async function uploadUrlsRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = serviceContext(c);
  const host = await authenticateHost(ctx, bearerToken(c.req.header("authorization")));
  const jobId = param(c, "jobId", z.string().regex(/^job_[A-Za-z0-9-]{1,64}$/), "Job");
  const body = await jsonBody(c, UploadUrlsRequest);
  return c.json(shape(UploadUrlsResponse, await uploadUrls(ctx.deps, ctx.db, host.id, jobId, body)));
}
