import { ProjectRef } from "@supamanager/shared";
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, shape } from "../../../lib/validate.js";
import {
  getRollout,
  listRollouts,
  type RolloutView,
  startRollout,
  stopRollout,
} from "../../../services/upgrades/rollout.js";

const ReleaseName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "a release name is lowercase, 1-64 characters");

export const RolloutBody = z.strictObject({
  from_release: ReleaseName,
  to_release: ReleaseName,
  org_slug: z.string().min(1).max(64).optional(),
  region: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "a region is lowercase letters, digits and dashes")
    .optional(),
  /** Upgrades at once after the canary. */
  parallel: z.number().int().min(1).max(50).default(1),
  allow_without_backup: z.boolean().default(false),
  /** The project to upgrade first (default: the oldest). */
  canary_ref: ProjectRef.optional(),
});

const ITEM_STATUSES = ["PENDING", "STARTING", "RUNNING", "COMPLETED", "ROLLED_BACK", "FAILED", "SKIPPED"] as const;

export const RolloutItem = z.object({
  id: z.number().int(),
  from_release: z.string(),
  to_release: z.string(),
  org_slug: z.string().nullable(),
  region: z.string().nullable(),
  parallel: z.number().int(),
  allow_without_backup: z.boolean(),
  status: z.enum(["RUNNING", "STOPPING", "COMPLETED", "STOPPED"]),
  stop_reason: z.string().nullable(),
  created_by: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  finished_at: z.string().nullable(),
  counts: z.object({
    total: z.number().int(),
    PENDING: z.number().int(),
    STARTING: z.number().int(),
    RUNNING: z.number().int(),
    COMPLETED: z.number().int(),
    ROLLED_BACK: z.number().int(),
    FAILED: z.number().int(),
    SKIPPED: z.number().int(),
  }),
  projects: z.array(
    z.object({
      ref: z.string(),
      org_slug: z.string().nullable(),
      region: z.string(),
      status: z.enum(ITEM_STATUSES),
      canary: z.boolean(),
      upgrade_id: z.number().int().nullable(),
      error: z.string().nullable(),
      started_at: z.string().nullable(),
      finished_at: z.string().nullable(),
    }),
  ),
});

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function rolloutItem(r: RolloutView): z.input<typeof RolloutItem> {
  return {
    id: r.id,
    from_release: r.fromRelease,
    to_release: r.toRelease,
    org_slug: r.orgSlug,
    region: r.region,
    parallel: r.parallel,
    allow_without_backup: r.allowWithoutBackup,
    status: r.status,
    stop_reason: r.stopReason,
    created_by: r.createdBy,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
    finished_at: iso(r.finishedAt),
    counts: r.counts,
    projects: r.projects.map((p) => ({
      ref: p.ref,
      org_slug: p.orgSlug,
      region: p.region,
      status: p.status,
      canary: p.canary,
      upgrade_id: p.upgradeId,
      error: p.error,
      started_at: iso(p.startedAt),
      finished_at: iso(p.finishedAt),
    })),
  };
}

const RolloutId = z
  .string()
  .regex(/^[0-9]{1,9}$/, "a fleet upgrade id is a number")
  .transform(Number);
const idOf = (c: Context<AppEnv>) => param(c, "id", RolloutId, "Fleet upgrade");

/**
 * POST /platform/fleet/upgrades — upgrade every project of an organization and/or a region on
 * `from_release` to `to_release`: a canary first, then `parallel` at a time, stopping at the first
 * failure. 202 with the rollout; it goes on in the control plane (GET …/upgrades/:id).
 */
export async function startRolloutRoute(c: Context<AppEnv>): Promise<Response> {
  const b = await jsonBody(c, RolloutBody);
  const r = await startRollout(authed(c), {
    fromRelease: b.from_release,
    toRelease: b.to_release,
    orgSlug: b.org_slug,
    region: b.region,
    parallel: b.parallel,
    allowWithoutBackup: b.allow_without_backup,
    canaryRef: b.canary_ref,
  });
  return c.json(shape(RolloutItem, rolloutItem(r)), 202);
}

/** GET /platform/fleet/upgrades — the most recent fleet upgrades with their reports. */
export async function listRolloutsRoute(c: Context<AppEnv>): Promise<Response> {
  const rows = await listRollouts(authed(c));
  return c.json(shape(z.array(RolloutItem), rows.map(rolloutItem)));
}

/** GET /platform/fleet/upgrades/:id — one fleet upgrade: where it is and what happened to each project. */
export async function getRolloutRoute(c: Context<AppEnv>): Promise<Response> {
  const id = idOf(c);
  return c.json(shape(RolloutItem, rolloutItem(await getRollout(authed(c), id))));
}

/** POST /platform/fleet/upgrades/:id/stop — start nothing more; running upgrades finish. */
export async function stopRolloutRoute(c: Context<AppEnv>): Promise<Response> {
  const id = idOf(c);
  return c.json(shape(RolloutItem, rolloutItem(await stopRollout(authed(c), id))));
}
