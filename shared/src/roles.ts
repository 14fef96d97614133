import { z } from "zod";

/** Organization roles, most to least privileged. */
export const ORG_ROLES = ["owner", "administrator", "developer", "read_only"] as const;
export const OrgRole = z.enum(ORG_ROLES);
export type OrgRole = z.infer<typeof OrgRole>;

/**
 * Stable numeric ids Studio uses for roles (`role_ids` on members, `org_scoped_roles[].id`).
 * They are the same in every organization.
 */
export const ROLE_IDS: Record<OrgRole, number> = {
  owner: 1,
  administrator: 2,
  developer: 3,
  read_only: 4,
};

/** Studio's display names for the roles. */
export const ROLE_NAMES: Record<OrgRole, string> = {
  owner: "Owner",
  administrator: "Administrator",
  developer: "Developer",
  read_only: "Read-only",
};

export function roleFromId(id: number): OrgRole | undefined {
  return ORG_ROLES.find((r) => ROLE_IDS[r] === id);
}

/** True when `role` is at least as privileged as `minimum`. */
export function roleAtLeast(role: OrgRole, minimum: OrgRole): boolean {
  return ORG_ROLES.indexOf(role) <= ORG_ROLES.indexOf(minimum);
}
