import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, query, shape } from "../../../lib/validate.js";
import type { ReleaseCatalog } from "../../../releases/catalog.js";
import type { ReleaseEligibility } from "../../../services/upgrades/eligibility.js";
import { startUpgrade, type UpgradeView } from "../../../services/upgrades/index.js";
import { projectEligibility, projectUpgradeStatus, upgradeTargetOf } from "../../../services/upgrades/queries.js";
import { preferredTargets } from "../../../services/upgrades/targets.js";
import { RefParam } from "../../platform/projects/schemas.js";

/**
 * The Management API's upgrade endpoints, which Studio's Infrastructure settings and upgrade
 * pages call. They speak of PostgreSQL versions; a release is shown as the PostgreSQL major it
 * runs, and `target_version` may name a release or a major (docs/upgrades-api.md).
 */

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

const RELEASE_CHANNELS = ["internal", "alpha", "beta", "ga", "withdrawn", "preview"] as const;

/** What Studio displays after `supabase-postgres-`: the major, and the release it stands for. */
export function appVersion(postgresMajor: number | null, release: string): string {
  return `supabase-postgres-${postgresMajor ?? "unknown"} (${release})`;
}

const TargetUpgradeVersion = z.object({
  postgres_version: z.enum(["13", "14", "15", "17", "17-oriole"]),
  release_channel: z.enum(RELEASE_CHANNELS),
  app_version: z.string(),
  /** Ours: the release this entry stands for. */
  release: z.string(),
});

export const V1EligibilityResponse = z.object({
  eligible: z.boolean(),
  current_app_version: z.string(),
  current_app_version_release_channel: z.enum(RELEASE_CHANNELS),
  latest_app_version: z.string(),
  target_upgrade_versions: z.array(TargetUpgradeVersion),
  duration_estimate_hours: z.number(),
  legacy_auth_custom_roles: z.array(z.string()),
  objects_to_be_dropped: z.array(z.string()),
  unsupported_extensions: z.array(z.string()),
  user_defined_objects_in_internal_schemas: z.array(z.string()),
  validation_errors: z.array(z.never()),
  potential_breaking_changes: z.array(z.string()),
});

/** A PostgreSQL major Studio's enum knows; another major cannot be offered to Studio. */
function studioMajor(major: number | null): "13" | "14" | "15" | "17" | null {
  const s = String(major);
  return s === "13" || s === "14" || s === "15" || s === "17" ? s : null;
}

/**
 * Our eligibility in the Management API's shape: one target per PostgreSQL major (the preferred
 * release of it, targets.ts), newest first; every release channel is `ga` (a release in the
 * catalog is one the operator chose to run). Nothing inspects the database for objects an
 * upgrade would drop, so those lists are empty; a PostgreSQL major change is named as a
 * potential breaking change.
 */
export function v1Eligibility(
  catalog: ReleaseCatalog,
  currentRelease: string,
  currentMajor: number | null,
  releases: readonly ReleaseEligibility[],
): z.input<typeof V1EligibilityResponse> {
  const targets = preferredTargets(catalog, currentRelease, releases).flatMap((e) => {
    const pg = studioMajor(e.postgresMajor);
    return pg
      ? [
          {
            postgres_version: pg,
            release_channel: "ga" as const,
            app_version: appVersion(e.postgresMajor, e.release),
            release: e.release,
          },
        ]
      : [];
  });
  const current = appVersion(currentMajor, currentRelease);
  const majors = releases.filter((e) => e.eligible && e.majorUpgrade);
  return {
    eligible: targets.length > 0,
    current_app_version: current,
    current_app_version_release_channel: "ga",
    latest_app_version: targets[0]?.app_version ?? current,
    target_upgrade_versions: targets,
    // An upper bound: the backup, the data step and the new stack's health deadline.
    duration_estimate_hours: 1,
    legacy_auth_custom_roles: [],
    objects_to_be_dropped: [],
    unsupported_extensions: [],
    user_defined_objects_in_internal_schemas: [],
    validation_errors: [],
    potential_breaking_changes: majors.map(
      (e) =>
        `Release ${e.release} runs PostgreSQL ${e.postgresMajor}, a new major version: the data is upgraded and extensions move to the versions that release ships`,
    ),
  };
}

/** GET /v1/projects/:ref/upgrade/eligibility (ProjectUpgradeEligibilityResponse; any member). */
export async function v1UpgradeEligibilityRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const e = await projectEligibility(ctx, refOf(c));
  return c.json(
    shape(V1EligibilityResponse, v1Eligibility(ctx.deps.releases, e.project.release, e.postgresMajor, e.releases)),
  );
}

/** UpgradeDatabaseBody, plus ours: `allow_without_backup`. */
export const V1UpgradeBody = z.object({
  /** A PostgreSQL major ("17") or a release name ("supabase-v0.8.2"). */
  target_version: z.string().min(1).max(64),
  /** Accepted and ignored: every release of the catalog is `ga`. */
  release_channel: z.enum(RELEASE_CHANNELS).optional(),
  allow_without_backup: z.boolean().default(false),
});

/**
 * POST /v1/projects/:ref/upgrade — start an upgrade (owners and administrators); 201 with the
 * upgrade's id as `tracking_id` (ProjectUpgradeInitiateResponse).
 */
export async function v1StartUpgradeRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const ref = refOf(c);
  const body = await jsonBody(c, V1UpgradeBody);
  const target = await upgradeTargetOf(ctx, ref, body.target_version);
  const u = await startUpgrade(ctx, ref, { targetRelease: target, allowWithoutBackup: body.allow_without_backup });
  return c.json({ tracking_id: String(u.id) }, 201);
}

/** Studio's DatabaseUpgradeStatus: 0 upgrading, 1 upgraded, 2 failed. */
const STUDIO_STATUS = { RUNNING: 0, COMPLETED: 1, ROLLED_BACK: 2, FAILED: 2 } as const;

/**
 * Our steps on Studio's progress list (it ticks off every entry numbered below the current
 * one): the backup is "requested", the agent picking the job up "started", the data step the
 * data upgrade, the new stack's start and checks "attached volume to upgraded instance".
 */
const STEP_PROGRESS: Record<string, string> = {
  backing_up: "0_requested",
  waiting_for_agent: "1_started",
  recording_facts: "1_started",
  stopping: "4_attached_volume_to_original_instance",
  copying_data: "5_initiated_data_upgrade",
  migrating_data: "5_initiated_data_upgrade",
  starting: "6_completed_data_upgrade",
  health_check: "8_attached_volume_to_upgraded_instance",
  post_check: "8_attached_volume_to_upgraded_instance",
  done: "9_completed_upgrade",
};

/** Where an upgrade failed, as Studio's error list names it (for its support message). */
function studioError(failedStep: string | null): string {
  switch (failedStep) {
    case "backing_up":
    case "waiting_for_agent":
    case "recording_facts":
    case "stopping":
      return "4_data_upgrade_initiation_failed";
    case "copying_data":
    case "migrating_data":
      return "5_data_upgrade_completion_failed";
    case "starting":
    case "health_check":
      return "1_upgraded_instance_launch_failed";
    default:
      return "8_upgrade_completion_failed";
  }
}

export const V1UpgradeStatusResponse = z.object({
  databaseUpgradeStatus: z
    .object({
      initiated_at: z.string(),
      latest_status_at: z.string(),
      target_version: z.number(),
      status: z.number().int(),
      progress: z.string().optional(),
      error: z.string().optional(),
      /** Ours: the upgrade's id, its releases, our step and the failure in words. */
      tracking_id: z.string(),
      from_release: z.string(),
      to_release: z.string(),
      step: z.string(),
      error_message: z.string().nullable(),
    })
    .nullable(),
});

export function v1UpgradeStatus(
  catalog: ReleaseCatalog,
  u: UpgradeView | null,
): z.input<typeof V1UpgradeStatusResponse> {
  if (!u) return { databaseUpgradeStatus: null };
  const failed = u.status === "ROLLED_BACK" || u.status === "FAILED";
  // While rolling back, Studio keeps showing the step that failed.
  const step = u.step === "rolling_back" ? (u.failedStep ?? "waiting_for_agent") : u.step;
  return {
    databaseUpgradeStatus: {
      initiated_at: u.createdAt.toISOString(),
      latest_status_at: u.updatedAt.toISOString(),
      target_version: catalog.get(u.toRelease)?.database?.postgresMajor ?? 0,
      status: STUDIO_STATUS[u.status],
      // A failure at an unknown step: how far it got is unknown, so only "started".
      progress: STEP_PROGRESS[failed ? (u.failedStep ?? "waiting_for_agent") : step] ?? "1_started",
      ...(failed ? { error: studioError(u.failedStep) } : {}),
      tracking_id: String(u.id),
      from_release: u.fromRelease,
      to_release: u.toRelease,
      step: u.step,
      error_message: u.error,
    },
  };
}

const StatusQuery = z.object({
  tracking_id: z
    .string()
    .regex(/^[0-9]{1,9}$/, "tracking_id is the id POST …/upgrade answered")
    .transform(Number)
    .optional(),
});

/**
 * GET /v1/projects/:ref/upgrade/status[?tracking_id=] (DatabaseUpgradeStatusResponse; any
 * member): that upgrade, or the project's latest; `null` when it never had one.
 */
export async function v1UpgradeStatusRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const ref = refOf(c);
  const q = query(c, StatusQuery);
  const { upgrade } = await projectUpgradeStatus(ctx, ref, q.tracking_id);
  return c.json(shape(V1UpgradeStatusResponse, v1UpgradeStatus(ctx.deps.releases, upgrade)));
}
