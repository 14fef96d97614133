import type { ProjectStatus } from "@supamanager/shared";
import { and, eq } from "drizzle-orm";
import { projectUpgrades } from "../../db/schema.js";
import type { AuthedContext, ServiceContext } from "../../deps.js";
import { notFound } from "../../errors.js";
import { projectForMember } from "../organizations/access.js";
import { hostFactsFor } from "../projects/host-facts.js";
import { isComputeSize, type ProjectRow } from "../projects/model.js";
import { type EligibilityProject, listEligibility, type ReleaseEligibility, refusalError } from "./eligibility.js";
import { resolveTargetVersion } from "./targets.js";
import { latestUpgrade, type UpgradeView, upgradeView } from "./upgrade.js";

/** A project row as eligibility sees it; `hostOnline` when the caller looked the host up. */
export function eligibilityProject(project: ProjectRow, hostOnline?: boolean): EligibilityProject {
  return {
    ref: project.ref,
    release: project.release,
    parts: project.parts,
    computeSize: isComputeSize(project.computeSize) ? project.computeSize : "nano",
    status: project.status as ProjectStatus,
    desiredState: project.desiredState,
    ...(hostOnline === undefined ? {} : { hostOnline }),
  };
}

export interface ProjectEligibility {
  project: ProjectRow;
  /** The PostgreSQL major of the project's release (null when the release does not say). */
  postgresMajor: number | null;
  releases: ReleaseEligibility[];
}

/** Every release with whether `ref` may be upgraded to it (any member: projects.read). */
export async function projectEligibility(ctx: AuthedContext, ref: string): Promise<ProjectEligibility> {
  const { project } = await projectForMember(ctx, ref, "projects.read");
  return eligibilityOfRow(ctx, project);
}

/** The same for a project already authorized (the fleet rollout). */
export async function eligibilityOfRow(ctx: ServiceContext, project: ProjectRow): Promise<ProjectEligibility> {
  const facts = await hostFactsFor(ctx, project);
  const releases = listEligibility(ctx.deps.releases, eligibilityProject(project, facts?.online ?? false));
  return {
    project,
    postgresMajor: ctx.deps.releases.get(project.release)?.database?.postgresMajor ?? null,
    releases,
  };
}

/**
 * The project's upgrade `id` (404 when it is another project's), or its most recent one; null
 * when it never had one. Any member (projects.read).
 */
export async function projectUpgradeStatus(
  ctx: AuthedContext,
  ref: string,
  id?: number,
): Promise<{ project: ProjectRow; upgrade: UpgradeView | null }> {
  const { project } = await projectForMember(ctx, ref, "projects.read");
  if (id === undefined) return { project, upgrade: await latestUpgrade(ctx.deps, project.id) };
  const [row] = await ctx.db
    .select()
    .from(projectUpgrades)
    .where(and(eq(projectUpgrades.id, id), eq(projectUpgrades.projectId, project.id)))
    .limit(1);
  if (!row) throw notFound(`Project ${ref} has no upgrade ${id}`);
  return { project, upgrade: upgradeView(row) };
}

/**
 * The release a Management API `target_version` (a release or a PostgreSQL major) stands for
 * project `ref`, for a member who may upgrade it (projects.lifecycle, as startUpgrade checks:
 * a member who may not hears 403, not why the target is refused). Refusals are 400/409.
 */
export async function upgradeTargetOf(ctx: AuthedContext, ref: string, targetVersion: string): Promise<string> {
  const { project } = await projectForMember(ctx, ref, "projects.lifecycle");
  const e = await eligibilityOfRow(ctx, project);
  const target = resolveTargetVersion(ctx.deps.releases, project.release, e.releases, targetVersion);
  if (!target.ok) throw refusalError(target.refusal);
  return target.release;
}
