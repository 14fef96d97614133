import type { OrgRole } from "@supamanager/shared";

/**
 * What each organization role may do, in our own terms. Routes check these actions;
 * Studio's permission rows (permissions.ts) express the same intent in Studio's vocabulary,
 * and permissions.test.ts checks that the two never disagree. The matrix follows Supabase's
 * documented role matrix (owner / administrator / developer / read-only) and is documented
 * in docs/roles.md.
 */
export const ACTIONS = [
  "org.read",
  /** Rename, billing email, opt-in tags. */
  "org.update",
  "org.delete",
  "members.read",
  /** Add a member (SupaManager adds existing accounts directly; there is no e-mail invite). */
  "members.invite",
  "members.update_role",
  "members.remove",
  /** Add, promote to, demote or remove an Owner. Also needs the plain members.* action. */
  "members.manage_owners",
  "audit.read",
  /** Subscription, entitlements, usage (all read-only answers on our instance). */
  "billing.read",
  "projects.read",
  "projects.create",
  /** Rename, settings, database password, API/auth config, JWT secret rotation. */
  "projects.update",
  "projects.delete",
  /** Pause and restore (resume) a project. */
  "projects.lifecycle",
  /** Restart a project or its services. */
  "projects.restart",
  /** Service-role key, JWT secret, connection secrets. */
  "projects.read_secrets",
  "backups.read",
  /** Take a backup, download one. */
  "backups.manage",
  /**
   * Restore a backup (in place, or into a new project), set the backup schedule and retention,
   * manage the organization's backup storage target.
   */
  "backups.admin",
  /** Read data through the SQL editor / table editor (read-only runs SELECT only). */
  "sql.read",
  /** Write data and schema through the SQL editor / table editor. */
  "sql.write",
] as const;
export type Action = (typeof ACTIONS)[number];

const ALL = new Set<Action>(ACTIONS);

const READ_ONLY: readonly Action[] = [
  "org.read",
  "members.read",
  "audit.read",
  "billing.read",
  "projects.read",
  "backups.read",
  "sql.read",
];

const DEVELOPER: readonly Action[] = [
  ...READ_ONLY,
  "projects.restart",
  "projects.read_secrets",
  "backups.manage",
  "sql.write",
];

export const ROLE_ACTIONS: Record<OrgRole, ReadonlySet<Action>> = {
  owner: ALL,
  // Supabase keeps org deletion, and adding/removing Owners, to Owners.
  administrator: new Set<Action>(ACTIONS.filter((a) => a !== "org.delete" && a !== "members.manage_owners")),
  developer: new Set<Action>(DEVELOPER),
  read_only: new Set<Action>(READ_ONLY),
};

export function roleCan(role: OrgRole, action: Action): boolean {
  return ROLE_ACTIONS[role].has(action);
}
