import { ORG_ROLES, type OrgRole, ROLE_IDS, ROLE_NAMES, roleFromId } from "@supamanager/shared";
import { and, asc, count, eq, inArray } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { orgMembers, profiles, users } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest, conflict, notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { assertCan, type OrgMembership, orgForMember } from "../organizations/access.js";
import { lockOrganization } from "../organizations/organizations.js";

/** Studio's Member object. */
export interface Member {
  gotrue_id: string;
  primary_email: string | null;
  username: string;
  role_ids: number[];
  mfa_enabled: boolean;
  is_sso_user: boolean | null;
  metadata: Record<string, never>;
}

/** Studio's Role object (GET /organizations/:slug/roles). */
export interface Role {
  id: number;
  name: string;
  description: string | null;
  base_role_id: number;
  project_ids: number[] | null;
}

const ROLE_DESCRIPTIONS: Record<OrgRole, string> = {
  owner: "Full access to the organization, its members, billing and every project",
  administrator: "Full access except deleting the organization and adding or removing Owners",
  developer: "Works with project data, SQL and backups; cannot manage members or project settings",
  read_only: "Reads everything except secrets; SQL limited to SELECT",
};

const LAST_OWNER =
  "An organization must keep at least one Owner: make another member an Owner first (or delete the organization)";

export function toMember(row: { userId: string; email: string; username: string | null; role: OrgRole }): Member {
  return {
    gotrue_id: row.userId,
    primary_email: row.email,
    username: row.username ?? (row.email.split("@")[0] || row.email),
    role_ids: [ROLE_IDS[row.role]],
    mfa_enabled: false,
    is_sso_user: false,
    metadata: {},
  };
}

export async function memberRows(db: Executor, orgId: number, userIds?: string[]) {
  return db
    .select({ userId: users.id, email: users.email, username: profiles.username, role: orgMembers.role })
    .from(orgMembers)
    .innerJoin(users, eq(users.id, orgMembers.userId))
    .leftJoin(profiles, eq(profiles.userId, users.id))
    .where(and(eq(orgMembers.orgId, orgId), userIds ? inArray(orgMembers.userId, userIds) : undefined))
    .orderBy(asc(orgMembers.createdAt), asc(users.email));
}

export async function listMembers(ctx: AuthedContext, slug: string): Promise<Member[]> {
  const { org } = await orgForMember(ctx, slug, "members.read");
  return (await memberRows(ctx.db, org.id)).map(toMember);
}

/** The four base roles; their ids are the same in every organization. */
export async function listRoles(
  ctx: AuthedContext,
  slug: string,
): Promise<{ org_scoped_roles: Role[]; project_scoped_roles: Role[] }> {
  await orgForMember(ctx, slug, "members.read");
  return {
    org_scoped_roles: ORG_ROLES.map((r) => ({
      id: ROLE_IDS[r],
      name: ROLE_NAMES[r],
      description: ROLE_DESCRIPTIONS[r],
      base_role_id: ROLE_IDS[r],
      project_ids: null,
    })),
    // Project-scoped roles are a hosted feature (entitlement project_scoped_roles is off).
    project_scoped_roles: [],
  };
}

export function roleForId(roleId: number): OrgRole {
  const role = roleFromId(roleId);
  if (!role) throw badRequest(`role_id ${roleId} is not a role (use ${ORG_ROLES.map((r) => ROLE_IDS[r]).join(", ")})`);
  return role;
}

/** Adding, promoting to, demoting or removing an Owner is itself Owner-only. */
export function assertMayTouch(caller: Pick<OrgMembership, "role">, ...roles: OrgRole[]): void {
  if (roles.includes("owner")) assertCan(caller.role, "members.manage_owners");
}

async function ownerCount(db: Executor, orgId: number): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(orgMembers)
    .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.role, "owner")));
  return row?.n ?? 0;
}

async function targetMembership(db: Executor, orgId: number, userId: string, lock = false) {
  const q = db
    .select({ role: orgMembers.role })
    .from(orgMembers)
    .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.userId, userId)));
  const [row] = lock ? await q.for("update") : await q;
  return row;
}

/** Give a member a different role (PATCH …/members/:id and PUT …/members/:id/roles/:role_id). */
export async function changeMemberRole(
  ctx: AuthedContext,
  slug: string,
  input: { userId: string; roleId: number },
): Promise<Member> {
  const caller = await orgForMember(ctx, slug, "members.update_role");
  const role = roleForId(input.roleId);
  const orgId = caller.org.id;
  return ctx.db.transaction(async (tx) => {
    await lockOrganization(tx, orgId);
    const target = await targetMembership(tx, orgId, input.userId, true);
    if (!target) throw notFound("Member not found in this organization");
    if (target.role !== role) {
      assertMayTouch(caller, target.role, role);
      if (target.role === "owner" && (await ownerCount(tx, orgId)) <= 1) throw conflict(LAST_OWNER);
      await tx
        .update(orgMembers)
        .set({ role })
        .where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.userId, input.userId)));
      await recordAudit(tx, ctx.meta, {
        action: "member.role_change",
        outcome: "success",
        actor: ctx.actor,
        orgId,
        target: input.userId,
        details: { from: target.role, to: role },
      });
    }
    const [row] = await memberRows(tx, orgId, [input.userId]);
    if (!row) throw new Error("member vanished during role change");
    return toMember(row);
  });
}

/**
 * Remove a member. Anyone may remove themselves (leave); removing someone else needs
 * members.remove, and an Owner can only be removed by an Owner. The last Owner stays.
 * With `roleId` (DELETE …/roles/:role_id) the member must hold that role: members have
 * exactly one role, so unassigning it removes the member.
 */
export async function removeMember(
  ctx: AuthedContext,
  slug: string,
  input: { userId: string; roleId?: number },
): Promise<{ gotrue_id: string }> {
  const self = input.userId === ctx.actor.userId;
  const caller = await orgForMember(ctx, slug, self ? "org.read" : "members.remove");
  const orgId = caller.org.id;
  return ctx.db.transaction(async (tx) => {
    await lockOrganization(tx, orgId);
    const target = await targetMembership(tx, orgId, input.userId, true);
    if (!target) throw notFound("Member not found in this organization");
    if (input.roleId !== undefined && ROLE_IDS[target.role] !== input.roleId) {
      throw notFound(`This member does not have role ${input.roleId}`);
    }
    if (!self) assertMayTouch(caller, target.role);
    if (target.role === "owner" && (await ownerCount(tx, orgId)) <= 1) throw conflict(LAST_OWNER);
    await tx.delete(orgMembers).where(and(eq(orgMembers.orgId, orgId), eq(orgMembers.userId, input.userId)));
    await recordAudit(tx, ctx.meta, {
      action: self ? "member.leave" : "member.remove",
      outcome: "success",
      actor: ctx.actor,
      orgId,
      target: input.userId,
      details: { role: target.role },
    });
    return { gotrue_id: input.userId };
  });
}
