import type { OrgRole } from "@supamanager/shared";

/**
 * What each organization role may do, in our own terms. Routes check these actions;
 * Studio's permission rows (permissions.ts) are derived from the same table so the UI and
 * the API never disagree. The matrix is documented in docs/roles.md.
 */
export const ACTIONS = [
  "org.read",
  "org.update",
  "org.delete",
  "members.read",
  "members.invite",
  "members.update_role",
  "members.remove",
  "audit.read",
  "projects.read",
  "projects.create",
  "projects.update",
  "projects.delete",
  "projects.lifecycle",
  "projects.read_secrets",
  "sql.read",
  "sql.write",
] as const;
export type Action = (typeof ACTIONS)[number];

const ALL = new Set<Action>(ACTIONS);

export const ROLE_ACTIONS: Record<OrgRole, ReadonlySet<Action>> = {
  owner: ALL,
  administrator: new Set<Action>(ACTIONS.filter((a) => a !== "org.delete")),
  developer: new Set<Action>([
    "org.read",
    "members.read",
    "projects.read",
    "projects.update",
    "projects.lifecycle",
    "projects.read_secrets",
    "sql.read",
    "sql.write",
  ]),
  read_only: new Set<Action>(["org.read", "members.read", "projects.read", "sql.read"]),
};

export function roleCan(role: OrgRole, action: Action): boolean {
  return ROLE_ACTIONS[role].has(action);
}
