import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, query, shape } from "../../../lib/validate.js";
import { REFUSAL_CODES } from "../../../services/upgrades/eligibility.js";
import { startUpgrade, type UpgradeView } from "../../../services/upgrades/index.js";
import { projectEligibility, projectUpgradeStatus } from "../../../services/upgrades/queries.js";
import { RefParam } from "./schemas.js";

/**
 * SupaManager's own upgrade API for a project (the CLI's; Studio uses the /v1 routes, which map
 * the same facts onto PostgreSQL versions): releases by name, reasons by code. docs/upgrades-api.md.
 */

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

const ReleaseName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "a release name is lowercase, 1-64 characters");

export const UpgradeBody = z.strictObject({
  /** The release to move to (`supamanager releases`). */
  target_release: ReleaseName,
  /** Start without a backup when the organization has no backup storage (the operator's risk). */
  allow_without_backup: z.boolean().default(false),
});

export const UpgradeItem = z.object({
  id: z.number().int(),
  ref: z.string(),
  from_release: z.string(),
  to_release: z.string(),
  status: z.enum(["RUNNING", "COMPLETED", "ROLLED_BACK", "FAILED"]),
  step: z.string(),
  failed_step: z.string().nullable(),
  error: z.string().nullable(),
  backup_id: z.number().int().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

export function upgradeItem(u: UpgradeView): z.input<typeof UpgradeItem> {
  return {
    id: u.id,
    ref: u.ref,
    from_release: u.fromRelease,
    to_release: u.toRelease,
    status: u.status,
    step: u.step,
    failed_step: u.failedStep,
    error: u.error,
    backup_id: u.backupId,
    created_at: u.createdAt.toISOString(),
    updated_at: u.updatedAt.toISOString(),
  };
}

export const EligibilityResponse = z.object({
  ref: z.string(),
  current_release: z.string(),
  current_postgres_major: z.number().int().nullable(),
  /** Whether any release is eligible. */
  eligible: z.boolean(),
  releases: z.array(
    z.object({
      release: z.string(),
      description: z.string().nullable(),
      upstream: z.string().nullable(),
      postgres_major: z.number().int().nullable(),
      /** The PostgreSQL major changes: the data directory is upgraded (pg_upgrade or dump/restore). */
      major_upgrade: z.boolean(),
      /** The parts the project runs on that release. */
      parts: z.array(z.string()),
      eligible: z.boolean(),
      reason_code: z.enum(REFUSAL_CODES).nullable(),
      reason: z.string().nullable(),
    }),
  ),
});

/** GET /platform/projects/:ref/upgrade/eligibility — every release, eligible or why not (any member). */
export async function upgradeEligibilityRoute(c: Context<AppEnv>): Promise<Response> {
  const e = await projectEligibility(authed(c), refOf(c));
  return c.json(
    shape(EligibilityResponse, {
      ref: e.project.ref,
      current_release: e.project.release,
      current_postgres_major: e.postgresMajor,
      eligible: e.releases.some((r) => r.eligible),
      releases: e.releases.map((r) => ({
        release: r.release,
        description: r.description,
        upstream: r.upstream,
        postgres_major: r.postgresMajor,
        major_upgrade: r.majorUpgrade,
        parts: r.parts,
        eligible: r.eligible,
        reason_code: r.refusal?.code ?? null,
        reason: r.refusal?.message ?? null,
      })),
    }),
  );
}

/**
 * POST /platform/projects/:ref/upgrade — start an upgrade (owners and administrators). 202 with
 * the upgrade; the project is UPGRADING until it ends (GET …/upgrade/status).
 */
export async function startUpgradeRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const body = await jsonBody(c, UpgradeBody);
  const u = await startUpgrade(authed(c), ref, {
    targetRelease: body.target_release,
    allowWithoutBackup: body.allow_without_backup,
  });
  return c.json(shape(UpgradeItem, upgradeItem(u)), 202);
}

const StatusQuery = z.strictObject({
  id: z
    .string()
    .regex(/^[0-9]{1,9}$/, "id is an upgrade id (a number)")
    .transform(Number)
    .optional(),
});

export const UpgradeStatusResponse = z.object({
  ref: z.string(),
  /** The project's status now (UPGRADING while an upgrade runs). */
  project_status: z.string(),
  status_reason: z.string().nullable(),
  /** The project's release now. */
  release: z.string(),
  upgrade: UpgradeItem.nullable(),
});

/**
 * GET /platform/projects/:ref/upgrade/status[?id=] — the upgrade `id`, or the project's latest
 * one (null when it never had one), beside the project's status (any member).
 */
export async function upgradeStatusRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const q = query(c, StatusQuery);
  const { project, upgrade } = await projectUpgradeStatus(authed(c), ref, q.id);
  return c.json(
    shape(UpgradeStatusResponse, {
      ref: project.ref,
      project_status: project.status,
      status_reason: project.statusReason,
      release: project.release,
      upgrade: upgrade ? upgradeItem(upgrade) : null,
    }),
  );
}
