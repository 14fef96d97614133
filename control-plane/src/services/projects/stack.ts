import type { AuthedContext } from "../../deps.js";
import { effectiveParts, runningServices } from "../../releases/compute.js";
import { projectForMember } from "../organizations/access.js";
import { hostFactsFor } from "./host-facts.js";
import { type ProjectView, toView } from "./model.js";
import { STACK_SERVICES, type StackService } from "./release-services.js";

/**
 * What a project runs: its release, the optional parts it chose, and for each Supabase service
 * whether one of its running Compose services plays it (a service of a part the project left out
 * does not run). What `supamanager projects smoke` tests and skips (ADR 0031).
 */
export interface ProjectStack {
  project: ProjectView;
  release: string;
  /** Null when the release is not loaded by this control plane (nothing is known to run). */
  parts: string[] | null;
  services: Record<StackService, boolean>;
}

export async function projectStack(ctx: AuthedContext, ref: string): Promise<ProjectStack> {
  const { project, org } = await projectForMember(ctx, ref, "projects.read");
  const view = toView(project, org.slug, await hostFactsFor(ctx, project));
  const release = ctx.deps.releases.get(project.release);
  const parts = release ? effectiveParts(release, project.parts) : null;
  const running = new Set(release && parts ? runningServices(release.services, parts).map(([name]) => name) : []);
  const services = Object.fromEntries(
    (Object.keys(STACK_SERVICES) as StackService[]).map((s) => [
      s,
      STACK_SERVICES[s].names.some((n) => running.has(n)),
    ]),
  ) as Record<StackService, boolean>;
  return { project: view, release: project.release, parts, services };
}
