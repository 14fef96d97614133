import { type OrgRole, ROLE_IDS } from "@supamanager/shared";
import { asc, eq } from "drizzle-orm";
import { organizations, orgMembers } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";

/** A json-logic expression, evaluated by Studio with `{ resource_name, resource, subject }` as data. */
export type JsonLogic = { [operator: string]: unknown };

/** One row of Studio's permission list (AccessControlPermission); every key is always present. */
export interface StudioPermission {
  organization_id: number;
  organization_slug: string;
  actions: string[];
  resources: string[];
  condition: JsonLogic | null;
  restrictive: boolean;
  project_refs: string[] | null;
  project_ids: number[] | null;
}

export interface Grant {
  actions: string[];
  resources: string[];
  /** null = applies unconditionally (Studio tests `condition === null` strictly). */
  condition: JsonLogic | null;
  /** A matching restrictive row denies, whatever the permissive rows say. */
  restrictive: boolean;
}

const allow = (actions: string[], resources: string[], condition: JsonLogic | null = null): Grant => ({
  actions,
  resources,
  condition,
  restrictive: false,
});
const deny = (actions: string[], resources: string[], condition: JsonLogic | null = null): Grant => ({
  actions,
  resources,
  condition,
  restrictive: true,
});

/** `resource.role_id` is the Owner role: used to keep adding/removing Owners to Owners. */
const TARGETS_OWNER: JsonLogic = { in: [{ var: "resource.role_id" }, [ROLE_IDS.owner]] };

/** What a Read-only member may read (no `secrets:Read`: any `%` row would reveal the API keys). */
const READ_ACTIONS = [
  "read:Read",
  "analytics:Read",
  "analytics:Admin:Read",
  "functions:Read",
  "storage:Read",
  "storage:Admin:Read",
  "realtime:Admin:Read",
  "replication:Admin:Read",
  "tenant:Sql:Admin:Read",
  "tenant:Sql:Read:Select",
  "tenant:Sql:Query",
  "sql:Read:Select",
  "billing:Read",
];

/**
 * Studio's rows per role, the same intent as matrix.ts in Studio's vocabulary (action strings
 * from @supabase/shared-types' PermissionAction, resources as Studio's checks name them).
 * Studio turns each action/resource into a regex where `%` is the wildcard; `*` is never
 * emitted because `^*$` is an invalid regex in the browser. See docs/roles.md.
 */
export const STUDIO_GRANTS: Record<OrgRole, Grant[]> = {
  owner: [allow(["%"], ["%"])],
  administrator: [
    allow(["%"], ["%"]),
    // Deleting the organization is Owner-only (Studio itself gates delete on write:Update, which
    // administrators keep so they can rename it and set the billing email; our API answers 403).
    deny(["write:Delete"], ["organizations"]),
    // Administrators cannot add, promote to, demote or remove Owners.
    deny(["write:Create", "write:Delete"], ["user_invites", "auth.subject_roles"], TARGETS_OWNER),
  ],
  developer: [
    allow(
      [
        ...READ_ACTIONS,
        "analytics:%",
        "functions:%",
        "storage:%",
        "realtime:%",
        "tenant:Sql:%",
        "sql:%",
        "auth:Execute",
        "secrets:Read",
      ],
      ["%"],
    ),
    // Restart only: pause/restore (queue_jobs.projects.*) and JWT rotation stay with administrators.
    allow(["infra:Execute"], ["reboot"]),
    allow(
      ["write:%"],
      [
        "user_content",
        "auth.users",
        "triggers",
        "functions",
        "tables",
        "columns",
        "policies",
        "publications",
        "extensions",
        "back_ups",
        "physical_backups",
        "logflare",
      ],
    ),
  ],
  read_only: [
    allow(READ_ACTIONS, ["%"]),
    // No legacy API keys and no JWT secret for Read-only.
    deny(["read:Read"], ["service_api_keys", "field.jwt_secret"]),
    // Read-only may keep its own SQL snippets (queries themselves are SELECT-only server-side).
    allow(["write:Create", "write:Update", "write:Delete"], ["user_content"], {
      "==": [{ var: "resource.type" }, "sql"],
    }),
  ],
};

/** The rows for one membership. Org-level rows: project_refs and project_ids are null. */
export function rowsForRole(org: { id: number; slug: string }, role: OrgRole): StudioPermission[] {
  return STUDIO_GRANTS[role].map((g) => ({
    organization_id: org.id,
    organization_slug: org.slug,
    actions: [...g.actions],
    resources: [...g.resources],
    condition: g.condition,
    restrictive: g.restrictive,
    project_refs: null,
    project_ids: null,
  }));
}

/** GET /platform/profile/permissions: a row set per organization the caller belongs to. */
export async function permissionsFor(ctx: AuthedContext): Promise<StudioPermission[]> {
  const memberships = await ctx.db
    .select({ id: organizations.id, slug: organizations.slug, role: orgMembers.role })
    .from(orgMembers)
    .innerJoin(organizations, eq(organizations.id, orgMembers.orgId))
    .where(eq(orgMembers.userId, ctx.actor.userId))
    .orderBy(asc(organizations.id));
  return memberships.flatMap((m) => rowsForRole(m, m.role));
}
