import { and, eq, ne, sql } from "drizzle-orm";
import { projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { projectForMember } from "../organizations/access.js";
import { type ProjectView, toView } from "./model.js";

/**
 * Ask for a project to be deleted: desired state "deleted" under a new spec version, status
 * GOING_DOWN. The agent tears the stack down (containers, network, volumes, directory); on its
 * `applied` the project is REMOVED (then it is gone: 404) and its ports are released.
 * Asking again while it is going down changes nothing and answers the same project.
 */
export async function deleteProject(ctx: AuthedContext, ref: string): Promise<ProjectView> {
  const { project, org } = await projectForMember(ctx, ref, "projects.delete");
  const row = await ctx.db.transaction(async (tx) => {
    // The conditional update makes concurrent deletes bump the version (and audit) once.
    const [row] = await tx
      .update(projects)
      .set({
        // A project that was never placed has nothing to tear down.
        status: project.hostId === null ? "REMOVED" : "GOING_DOWN",
        desiredState: "deleted",
        specVersion: sql`${projects.specVersion} + 1`,
        statusReason: null,
        health: null,
        healthAt: null,
        updatedAt: new Date(ctx.deps.clock.now()),
      })
      .where(and(eq(projects.id, project.id), ne(projects.desiredState, "deleted"), ne(projects.status, "REMOVED")))
      .returning();
    if (row) {
      await recordAudit(tx, ctx.meta, {
        action: "project.delete",
        outcome: "success",
        actor: ctx.actor,
        orgId: org.id,
        projectRef: ref,
        target: ref,
        details: { name: row.name, spec_version: row.specVersion },
      });
      return row;
    }
    const [current] = await tx
      .select()
      .from(projects)
      .where(and(eq(projects.id, project.id), ne(projects.status, "REMOVED")))
      .limit(1);
    if (!current) throw notFound(`Project ${ref} not found`);
    return current;
  });
  // The teardown goes out at once if the host is connected here; otherwise on its reconnect.
  if (row.hostId) await ctx.deps.hub.kick(row.hostId);
  return toView(row, org.slug);
}
