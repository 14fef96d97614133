import { and, eq, ne } from "drizzle-orm";
import { projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { projectForMember } from "../organizations/access.js";
import { type ProjectView, toView } from "./model.js";

/**
 * Rename a project. A name is display-only (the stack is keyed by ref), so the spec version is
 * not bumped: nothing on the host has to change.
 */
export async function renameProject(ctx: AuthedContext, ref: string, name: string): Promise<ProjectView> {
  const { project, org } = await projectForMember(ctx, ref, "projects.update");
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .update(projects)
      .set({ name, updatedAt: new Date(ctx.deps.clock.now()) })
      .where(and(eq(projects.id, project.id), ne(projects.status, "REMOVED")))
      .returning();
    if (!row) throw notFound(`Project ${ref} not found`);
    await recordAudit(tx, ctx.meta, {
      action: "project.rename",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: ref,
      target: ref,
      details: { from: project.name, to: name },
    });
    return toView(row, org.slug);
  });
}
