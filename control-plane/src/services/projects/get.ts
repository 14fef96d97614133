import type { ProjectStatus } from "@supamanager/shared";
import type { AuthedContext } from "../../deps.js";
import { projectWithHostForMember } from "./host-facts.js";
import { type ProjectView, toView } from "./model.js";

/** One project as seen by a member of its organization (anyone else, or REMOVED → 404). One statement. */
export async function getProject(ctx: AuthedContext, ref: string): Promise<ProjectView> {
  const { project, org, host } = await projectWithHostForMember(ctx, ref, "projects.read", { ports: true });
  return toView(project, org.slug, host);
}

/** The status a member reads (UNKNOWN on an offline host), for Studio's polling. One statement, by key. */
export async function getProjectStatus(ctx: AuthedContext, ref: string): Promise<ProjectStatus> {
  const { project, org, host } = await projectWithHostForMember(ctx, ref, "projects.read", { ports: false });
  return toView(project, org.slug, host).status;
}
