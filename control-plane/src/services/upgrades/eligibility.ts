import type { DesiredState, ProjectStatus } from "@supamanager/shared";
import { ApiError } from "../../errors.js";
import type { ReleaseCatalog } from "../../releases/catalog.js";
import { computeSizeAllowed, effectiveParts, releaseParts } from "../../releases/compute.js";
import type { ReleaseManifest, ReleasePart } from "../../releases/manifest.js";
import type { ComputeSize } from "../projects/model.js";

/**
 * Which releases a project may be upgraded to, and why not the others. Pure: it reads the release
 * catalog and the project's facts, nothing else, so the API's eligibility answer, the CLI's list,
 * the upgrade procedure's own check and the fleet rollout's per-project check all agree.
 */

/** What eligibility needs to know of a project (a ProjectView plus its chosen parts). */
export interface EligibilityProject {
  ref: string;
  release: string;
  /** The parts the project chose (null → its release's default parts). */
  parts: readonly string[] | null;
  computeSize: ComputeSize;
  status: ProjectStatus;
  desiredState?: DesiredState;
  /** Whether the project's host is connected; an upgrade is run by its agent. Unknown → not checked. */
  hostOnline?: boolean;
}

/**
 * Why a target is refused, most fundamental first. The order is the order of the checks, so a
 * listing names the reason that would remain after fixing the others last.
 */
export const REFUSAL_CODES = [
  "unknown_release",
  "same_release",
  "current_release_unknown",
  "no_database_facts",
  "postgres_downgrade",
  "missing_parts",
  "compute_too_small",
  "project_state",
  "host_offline",
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

export interface Refusal {
  code: RefusalCode;
  /** Client-facing: what is wrong and what to do about it. */
  message: string;
}

export interface ReleaseEligibility {
  release: string;
  description: string | null;
  upstream: string | null;
  /** The target's PostgreSQL major (null when the release does not say). */
  postgresMajor: number | null;
  /** Whether the data directory must be upgraded (the PostgreSQL major changes). */
  majorUpgrade: boolean;
  /** The parts the project runs on the target (see partsAfterUpgrade). */
  parts: ReleasePart[];
  eligible: boolean;
  /** The first reason the target is refused (null when eligible). */
  refusal: Refusal | null;
}

/** The parts the project runs today: its choice (only parts its release has), else its release's default. */
function currentParts(current: ReleaseManifest, project: EligibilityProject): ReleasePart[] {
  return effectiveParts(current, project.parts);
}

/**
 * The parts the project runs after the upgrade: its stored choice applied to the target, as the
 * procedure renders it (create stores every project's parts; a row without a choice gets the
 * target's default parts). An upgrade never changes the choice, so a project on `local` (no parts)
 * runs the target's core services only.
 */
export function partsAfterUpgrade(target: ReleaseManifest, project: Pick<EligibilityProject, "parts">): ReleasePart[] {
  return effectiveParts(target, project.parts);
}

/**
 * What the project's state allows, independent of the target. An upgrade starts only from a
 * healthy, running project: the procedure rolls back to the state it started from, so that state
 * must be one worth returning to.
 */
export function stateRefusal(project: EligibilityProject): Refusal | null {
  const ref = project.ref;
  if (project.desiredState === "paused" || project.status === "INACTIVE" || project.status === "PAUSING") {
    return {
      code: "project_state",
      message: `Project ${ref} is paused; restore it (supamanager projects restore ${ref}) and upgrade once it is ACTIVE_HEALTHY`,
    };
  }
  if (project.desiredState === "deleted" || project.status === "REMOVED" || project.status === "GOING_DOWN") {
    return { code: "project_state", message: `Project ${ref} is being deleted and cannot be upgraded` };
  }
  switch (project.status) {
    case "ACTIVE_HEALTHY":
      break;
    case "UPGRADING":
      return {
        code: "project_state",
        message: `Project ${ref} is already upgrading; wait for it to finish (supamanager projects upgrade-status ${ref})`,
      };
    case "RESTORING":
      return {
        code: "project_state",
        message: `Project ${ref} is being restored from a backup; wait until it is ACTIVE_HEALTHY and try again`,
      };
    case "COMING_UP":
    case "RESTARTING":
    case "RESIZING":
      return {
        code: "project_state",
        message: `Project ${ref} is ${project.status}; wait until it is ACTIVE_HEALTHY and try again`,
      };
    default:
      return {
        code: "project_state",
        message: `Project ${ref} is ${project.status}, not ACTIVE_HEALTHY; fix it first (see its status reason) so that a rollback has a healthy project to return to`,
      };
  }
  if (project.hostOnline === false) {
    return {
      code: "host_offline",
      message: `The host of project ${ref} is offline; an upgrade is run by its agent, so start it when the host is back (supamanager hosts list)`,
    };
  }
  return null;
}

/** Why `target` cannot hold the project, looking only at the releases (not the project's state). */
function releaseRefusal(
  catalog: ReleaseCatalog,
  project: EligibilityProject,
  target: ReleaseManifest,
): { refusal: Refusal | null; parts: ReleasePart[] } {
  const current = catalog.get(project.release);
  const targetParts = releaseParts(target);
  if (target.name === project.release) {
    return {
      refusal: { code: "same_release", message: `Project ${project.ref} already runs release ${target.name}` },
      parts: current ? currentParts(current, project) : [],
    };
  }
  if (!current) {
    return {
      refusal: {
        code: "current_release_unknown",
        message: `Project ${project.ref} runs release ${project.release}, which this control plane no longer knows; add it back to SUPAMANAGER_RELEASES_FILE before upgrading`,
      },
      parts: [],
    };
  }
  const parts = currentParts(current, project);
  if (!current.database || !target.database) {
    const which = current.database ? target.name : current.name;
    return {
      refusal: {
        code: "no_database_facts",
        message: `Release ${which} does not describe its database (service, PostgreSQL major, volume), so upgrades to or from it are not possible; add a \`database\` entry to its manifest`,
      },
      parts,
    };
  }
  if (target.database.postgresMajor < current.database.postgresMajor) {
    return {
      refusal: {
        code: "postgres_downgrade",
        message: `Release ${target.name} runs PostgreSQL ${target.database.postgresMajor}, older than the project's PostgreSQL ${current.database.postgresMajor}; a PostgreSQL major version cannot be downgraded (restore a backup into a new project instead)`,
      },
      parts,
    };
  }
  const missing = parts.filter((p) => !targetParts.includes(p));
  if (missing.length > 0) {
    return {
      refusal: {
        code: "missing_parts",
        message: `Release ${target.name} has no ${missing.join(", ")}, which project ${project.ref} runs; choose a release that has them`,
      },
      parts,
    };
  }
  const after = partsAfterUpgrade(target, project);
  const fits = computeSizeAllowed(target, project.computeSize, after);
  if (!fits.ok) {
    return {
      refusal: {
        code: "compute_too_small",
        message: `${fits.reason}; change project ${project.ref}'s compute size first (Studio: Project Settings → Compute and Disk)`,
      },
      parts: after,
    };
  }
  return { refusal: null, parts: after };
}

function eligibilityOf(catalog: ReleaseCatalog, project: EligibilityProject, target: ReleaseManifest) {
  const current = catalog.get(project.release);
  const { refusal, parts } = releaseRefusal(catalog, project, target);
  const blocked = refusal ?? stateRefusal(project);
  const from = current?.database?.postgresMajor;
  const to = target.database?.postgresMajor;
  return {
    release: target.name,
    description: target.description ?? null,
    upstream: target.upstream ?? null,
    postgresMajor: to ?? null,
    majorUpgrade: from !== undefined && to !== undefined && from !== to,
    parts,
    eligible: blocked === null,
    refusal: blocked,
  } satisfies ReleaseEligibility;
}

/**
 * Every release of the catalog, each with whether the project may be upgraded to it and, when not,
 * why. The project's own release is listed too (refused as `same_release`), so a caller sees the
 * whole catalog.
 */
export function listEligibility(catalog: ReleaseCatalog, project: EligibilityProject): ReleaseEligibility[] {
  return catalog.names().map((name) => eligibilityOf(catalog, project, catalog.get(name) as ReleaseManifest));
}

/** The HTTP shape of a refusal: a target that cannot be is a client mistake (400), a state that may change is a conflict (409). */
export function refusalError(refusal: Refusal): ApiError {
  const state = refusal.code === "project_state" || refusal.code === "host_offline";
  return new ApiError(state ? "conflict" : "bad_request", refusal.message);
}

/**
 * The eligibility of one target, or a refusal: `{ ok: false }` carries the refusal (for the fleet
 * rollout, which reports rather than throws); `assertEligible` throws it as an ApiError.
 */
export function checkEligibility(
  catalog: ReleaseCatalog,
  project: EligibilityProject,
  targetRelease: string,
): { ok: true; eligibility: ReleaseEligibility } | { ok: false; refusal: Refusal } {
  const target = catalog.get(targetRelease);
  if (!target) {
    return {
      ok: false,
      refusal: {
        code: "unknown_release",
        message: `No release named ${targetRelease}; known: ${catalog.names().join(", ")} (supamanager releases)`,
      },
    };
  }
  const e = eligibilityOf(catalog, project, target);
  return e.refusal ? { ok: false, refusal: e.refusal } : { ok: true, eligibility: e };
}

/** checkEligibility, throwing the refusal as a 400/409 ApiError with its message. */
export function assertEligible(
  catalog: ReleaseCatalog,
  project: EligibilityProject,
  targetRelease: string,
): ReleaseEligibility {
  const r = checkEligibility(catalog, project, targetRelease);
  if (!r.ok) throw refusalError(r.refusal);
  return r.eligibility;
}
