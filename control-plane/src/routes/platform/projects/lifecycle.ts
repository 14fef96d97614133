import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, shape } from "../../../lib/validate.js";
import { latestDownloadableBackupId } from "../../../services/backups/index.js";
import { pauseStatus, requestLifecycle } from "../../../services/projects/lifecycle.js";
import { POSTGRES_MAJOR } from "../../../services/projects/model.js";
import { lifecycleResponse, RefParam } from "./schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** POST /platform/projects/:ref/pause — PAUSING, then INACTIVE once the agent has stopped it. */
export async function pauseProjectRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  return c.json(lifecycleResponse(await requestLifecycle(authed(c), ref, "pause")));
}

/** Studio's UnpauseProjectBody; every field optional (we run one engine and one channel). */
export const UnpauseProjectBody = z.object({
  postgres_engine: z
    .literal(POSTGRES_MAJOR, { error: `postgres_engine: only Postgres ${POSTGRES_MAJOR} is available` })
    .optional(),
  release_channel: z.enum(["internal", "alpha", "beta", "ga", "withdrawn", "preview"]).optional(),
});

/** POST /platform/projects/:ref/restore — RESTORING, then ACTIVE_HEALTHY once healthy. */
export async function restoreProjectRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  await jsonBody(c, UnpauseProjectBody);
  return c.json(lifecycleResponse(await requestLifecycle(authed(c), ref, "restore")));
}

/**
 * POST /platform/projects/:ref/restart and /restart-services — RESTARTING, then ACTIVE_HEALTHY.
 * The whole stack restarts; Studio's service selection (restart-services body) is accepted and
 * not narrowed yet.
 */
export async function restartProjectRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  await jsonBody(c, z.looseObject({}));
  return c.json(lifecycleResponse(await requestLifecycle(authed(c), ref, "restart")));
}

const PauseStatusResponse = z.object({
  can_restore: z.boolean(),
  last_paused_on: z.string().nullable(),
  latest_downloadable_backup_id: z.number().nullable(),
  max_days_till_restore_disabled: z.number(),
  remaining_days_till_restore_disabled: z.number().nullable(),
});

/** GET /platform/projects/:ref/pause/status (PauseStatusResponse). */
export async function pauseStatusRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const ref = refOf(c);
  const s = await pauseStatus(ctx, ref);
  return c.json(
    shape(PauseStatusResponse, {
      can_restore: s.canRestore,
      last_paused_on: s.lastPausedOn?.toISOString() ?? null,
      latest_downloadable_backup_id: await latestDownloadableBackupId(ctx.db, ref),
      max_days_till_restore_disabled: s.maxDaysTillRestoreDisabled,
      remaining_days_till_restore_disabled: s.remainingDaysTillRestoreDisabled,
    }),
  );
}
