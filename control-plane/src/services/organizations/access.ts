import type { OrgRole } from "@supamanager/shared";
import { and, eq, ne } from "drizzle-orm";
import { organizations, orgMembers, projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { forbidden, notFound } from "../../errors.js";
import { type Action, roleCan } from "../permissions/matrix.js";

export type OrgRow = typeof organizations.$inferSelect;
export type ProjectRow = typeof projects.$inferSelect;

export interface OrgMembership {
  org: OrgRow;
  role: OrgRole;
}

export interface ProjectMembership extends OrgMembership {
  project: ProjectRow;
}

/**
 * The organization `slug` as seen by the caller. Not a member → 404 (the same answer as a slug
 * that does not exist, so slugs cannot be probed). With `action`, a member whose role may not
 * do it gets 403.
 */
export async function orgForMember(ctx: AuthedContext, slug: string, action?: Action): Promise<OrgMembership> {
  const [row] = await ctx.db
    .select({ org: organizations, role: orgMembers.role })
    .from(organizations)
    .innerJoin(orgMembers, and(eq(orgMembers.orgId, organizations.id), eq(orgMembers.userId, ctx.actor.userId)))
    .where(eq(organizations.slug, slug))
    .limit(1);
  if (!row) throw notFound(`Organization ${slug} not found`);
  if (action) assertCan(row.role, action);
  return row;
}

/** The project `ref` as seen by the caller; same rules as orgForMember. REMOVED projects are gone. */
export async function projectForMember(ctx: AuthedContext, ref: string, action?: Action): Promise<ProjectMembership> {
  const [row] = await ctx.db
    .select({ project: projects, org: organizations, role: orgMembers.role })
    .from(projects)
    .innerJoin(organizations, eq(organizations.id, projects.orgId))
    .innerJoin(orgMembers, and(eq(orgMembers.orgId, projects.orgId), eq(orgMembers.userId, ctx.actor.userId)))
    .where(and(eq(projects.ref, ref), ne(projects.status, "REMOVED")))
    .limit(1);
  if (!row) throw notFound(`Project ${ref} not found`);
  if (action) assertCan(row.role, action);
  return row;
}

export function assertCan(role: OrgRole, action: Action): void {
  if (!roleCan(role, action)) throw forbidden(`Your role (${role}) does not allow ${action}`);
}
