import type { OrgRole } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { organizations, orgMembers } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";

/** One row of Studio's permission list (AccessControlPermission). */
export interface StudioPermission {
  organization_id: number;
  organization_slug: string;
  actions: string[];
  resources: string[];
  condition: null;
  restrictive: boolean;
  project_refs: string[] | null;
  project_ids: number[] | null;
}

type Grant = { actions: string[]; resources: string[]; restrictive?: boolean };

/**
 * Studio's rows for each role, derived from the same intent as matrix.ts. `%` is Studio's
 * wildcard; a `restrictive` row takes away what a broader row gave.
 */
export const STUDIO_GRANTS: Record<OrgRole, Grant[]> = {
  owner: [{ actions: ["%"], resources: ["%"] }],
  administrator: [
    { actions: ["%"], resources: ["%"] },
    { actions: ["delete"], resources: ["organizations"], restrictive: true },
  ],
  developer: [
    { actions: ["%"], resources: ["%"] },
    {
      actions: ["write:Create", "write:Update", "write:Delete", "create", "update", "delete"],
      resources: ["organizations", "user_invites", "auth.subject_roles", "organization_members", "billing"],
      restrictive: true,
    },
    { actions: ["write:Create", "create", "delete"], resources: ["projects"], restrictive: true },
  ],
  read_only: [
    {
      actions: ["read:Read", "%:Read", "analytics:Read", "sql:Read:Select", "tenant:Sql:Read:Select"],
      resources: ["%"],
    },
  ],
};

/** GET /platform/profile/permissions: a row set per organization the caller belongs to. */
export async function permissionsFor(ctx: AuthedContext): Promise<StudioPermission[]> {
  const memberships = await ctx.db
    .select({ id: organizations.id, slug: organizations.slug, role: orgMembers.role })
    .from(orgMembers)
    .innerJoin(organizations, eq(organizations.id, orgMembers.orgId))
    .where(eq(orgMembers.userId, ctx.actor.userId));
  return memberships.flatMap((m) =>
    STUDIO_GRANTS[m.role].map((g) => ({
      organization_id: m.id,
      organization_slug: m.slug,
      actions: g.actions,
      resources: g.resources,
      condition: null,
      restrictive: g.restrictive ?? false,
      project_refs: null,
      project_ids: null,
    })),
  );
}
