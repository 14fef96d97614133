import type { AuthedContext } from "../../deps.js";
import { projectForMember } from "../organizations/access.js";
import { hostFactsFor } from "./host-facts.js";
import { type ProjectView, toView } from "./model.js";

/** One project as seen by a member of its organization (anyone else, or REMOVED → 404). */
export async function getProject(ctx: AuthedContext, ref: string): Promise<ProjectView> {
  const { project, org } = await projectForMember(ctx, ref, "projects.read");
  return toView(project, org.slug, await hostFactsFor(ctx, project));
}
