import type { OrgRole } from "@supamanager/shared";
import { asc, eq } from "drizzle-orm";
import { organizations, orgMembers } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { type Action, roleCan } from "./matrix.js";

/**
 * GET /platform/profile/permissions/v2: newer Studio builds (data/permissions/permissions-query-v2.ts,
 * hooks/misc/useCheckPermissionsV2.ts) check fine-grained permission ids against
 * `{organizations: [{slug, role, permissions: [id…], projects: [{ref, role, permissions}]}]}`:
 * an id in the organization's list applies to all its projects, a project entry overrides it.
 * The ids are Supabase's FGA permission ids (@supabase/shared-types `permissions.FgaPermissions`);
 * each is granted when our role matrix (matrix.ts) allows the action that guards the same routes
 * here. Ids of features SupaManager does not have (branching, custom domains, vanity subdomains,
 * read replicas, disk and add-on changes, JIT access, network bans and restrictions, SSL and
 * pooling and read-only-mode changes) are granted to nobody, so Studio hides their controls.
 * Roles are per organization: no project entries.
 */
const FGA: readonly [string, Action | null][] = [
  // The account's own scope: any member of anything.
  ["organizations_read", "org.read"],
  ["organizations_create", "org.read"],
  ["projects_read", "projects.read"],
  ["snippets_read", "projects.read"],
  // Organization.
  ["organization_admin_read", "org.read"],
  ["organization_admin_write", "org.update"],
  ["members_read", "members.read"],
  ["members_write", "members.update_role"],
  ["organization_projects_read", "projects.read"],
  ["organization_projects_create", "projects.create"],
  // Projects.
  ["project_admin_read", "projects.read"],
  ["project_admin_write", "projects.update"],
  ["action_runs_read", "projects.read"],
  ["action_runs_write", null],
  ["advisors_read", "projects.read"],
  ["analytics_logs_read", "projects.read"],
  ["analytics_usage_read", "projects.read"],
  ["api_gateway_keys_read", "projects.read_secrets"],
  ["api_gateway_keys_write", null],
  ["auth_config_read", "projects.read"],
  ["auth_config_write", "projects.update"],
  ["auth_signing_keys_read", "projects.read"],
  ["auth_signing_keys_write", null],
  ["backups_read", "backups.read"],
  ["backups_write", "backups.manage"],
  ["branching_development_create", null],
  ["branching_development_delete", null],
  ["branching_development_read", "projects.read"],
  ["branching_development_write", null],
  ["branching_production_create", null],
  ["branching_production_delete", null],
  ["branching_production_read", "projects.read"],
  ["branching_production_write", null],
  ["custom_domain_read", "projects.read"],
  ["custom_domain_write", null],
  ["data_api_config_read", "projects.read"],
  ["data_api_config_write", null],
  ["database_read", "sql.read"],
  ["database_write", "sql.write"],
  ["database_config_read", "projects.read"],
  ["database_config_write", "projects.update"],
  ["database_jit_read", "projects.read"],
  ["database_jit_write", null],
  ["database_network_bans_read", "projects.read"],
  ["database_network_bans_write", null],
  ["database_network_restrictions_read", "projects.read"],
  ["database_network_restrictions_write", null],
  ["database_migrations_read", "sql.read"],
  ["database_migrations_write", "sql.write"],
  ["database_pooling_config_read", "projects.read"],
  ["database_pooling_config_write", null],
  ["database_readonly_config_read", "projects.read"],
  ["database_readonly_config_write", null],
  ["database_ssl_config_read", "projects.read"],
  ["database_ssl_config_write", null],
  ["database_webhooks_config_read", "sql.read"],
  ["database_webhooks_config_write", "sql.write"],
  ["edge_functions_read", "projects.read"],
  ["edge_functions_write", "sql.write"],
  ["edge_functions_secrets_read", "projects.read_secrets"],
  ["edge_functions_secrets_write", "sql.write"],
  ["infra_add_ons_read", "projects.read"],
  ["infra_add_ons_write", null],
  ["infra_disk_config_read", "projects.read"],
  ["infra_disk_config_write", null],
  ["infra_read_replicas_read", "projects.read"],
  ["infra_read_replicas_write", null],
  // Saved snippets: every member keeps their own; who may touch which row is decided per row
  // (services/content/rules.ts), and Studio narrows writes below developer itself.
  ["project_snippets_read", "projects.read"],
  ["project_snippets_write", "projects.read"],
  ["storage_read", "sql.read"],
  ["storage_write", "sql.write"],
  ["storage_config_read", "projects.read"],
  ["storage_config_write", null],
  ["vanity_subdomain_read", "projects.read"],
  ["vanity_subdomain_write", null],
];

/** The FGA ids `role` is granted. */
export function fgaPermissions(role: OrgRole): string[] {
  return FGA.filter(([, action]) => action !== null && roleCan(role, action)).map(([id]) => id);
}

export interface PermissionsV2 {
  organizations: { slug: string; role: OrgRole; permissions: string[]; projects: never[] }[];
}

export async function permissionsV2For(ctx: AuthedContext): Promise<PermissionsV2> {
  const memberships = await ctx.db
    .select({ slug: organizations.slug, role: orgMembers.role })
    .from(orgMembers)
    .innerJoin(organizations, eq(organizations.id, orgMembers.orgId))
    .where(eq(orgMembers.userId, ctx.actor.userId))
    .orderBy(asc(organizations.id));
  return {
    organizations: memberships.map((m) => ({
      slug: m.slug,
      role: m.role,
      permissions: fgaPermissions(m.role),
      projects: [],
    })),
  };
}
