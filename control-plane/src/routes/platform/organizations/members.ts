import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param } from "../../../lib/validate.js";
import {
  acceptInvitation,
  createInvitations,
  deleteInvitation,
  invitationByToken,
  listInvitations as pendingInvitations,
} from "../../../services/members/invitations.js";
import { changeMemberRole, listMembers, listRoles, removeMember } from "../../../services/members/members.js";
import { orgForMember } from "../../../services/organizations/access.js";
import { memberId, orgSlug, roleIdParam } from "./params.js";

const RoleId = z.number({ error: "role_id must be a number" }).int().positive();
const Email = z.email("each email must be a valid address").max(320);
const NoProjectScope = z
  .array(z.string())
  .max(0, "project-scoped roles are not available on SupaManager; omit role_scoped_projects")
  .optional();

/** Current Studio sends `emails[]`; older api-types send a single `email`. Both are accepted. */
export const InviteMembersBody = z.union(
  [
    z.object({
      emails: z.array(Email).min(1, "emails must not be empty").max(50, "at most 50 emails at once"),
      role_id: RoleId,
      role_scoped_projects: NoProjectScope,
      require_sso: z.boolean().optional(),
    }),
    z.object({ email: Email, role_id: RoleId, role_scoped_projects: NoProjectScope }),
  ],
  { error: "body must be {emails: string[], role_id} or {email, role_id}" },
);

export const AssignRoleBody = z.object({ role_id: RoleId, role_scoped_projects: NoProjectScope });
/** PUT …/roles/:role_id carries the role's name and projects; only org-wide roles exist here. */
export const PutRoleBody = z.object({ name: z.string().max(100).optional(), role_scoped_projects: NoProjectScope });

/** GET /platform/organizations/:slug/members */
export async function getMembers(c: Context<AppEnv>): Promise<Response> {
  return c.json(await listMembers(authed(c), orgSlug(c)));
}

/** An invitation token as issued (32 random bytes, base64url); anything else is simply not found. */
const inviteToken = (c: Context<AppEnv>): string =>
  param(c, "token", z.string().regex(/^[A-Za-z0-9_-]{43}$/), "Invitation");

/** The numeric `:id` of an invitation. */
const invitationId = (c: Context<AppEnv>): number =>
  param(c, "id", z.coerce.number().int().positive().max(2_147_483_647), "Invitation");

/**
 * POST /platform/organizations/:slug/members/invitations — invites addresses; nobody is added
 * until the invitee accepts (ADR 0026). Answers 201 `{invitations}` with each invitation's token
 * and Studio join path, the same whether or not an account uses the address.
 */
export async function inviteMembers(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  const body = await jsonBody(c, InviteMembersBody);
  const emails = "emails" in body ? body.emails : [body.email];
  return c.json({ invitations: await createInvitations(authed(c), slug, { emails, roleId: body.role_id }) }, 201);
}

/** GET /platform/organizations/:slug/members/invitations — the pending invitations. */
export async function listInvitations(c: Context<AppEnv>): Promise<Response> {
  return c.json({ invitations: await pendingInvitations(authed(c), orgSlug(c)) });
}

/** GET /platform/organizations/:slug/members/invitations/:token — Studio's join page (any signed-in account). */
export async function getInvitationByToken(c: Context<AppEnv>): Promise<Response> {
  return c.json(await invitationByToken(authed(c), orgSlug(c), inviteToken(c)));
}

/** POST /platform/organizations/:slug/members/invitations/:token — the invitee joins. */
export async function acceptInvitationRoute(c: Context<AppEnv>): Promise<Response> {
  return c.json(await acceptInvitation(authed(c), orgSlug(c), inviteToken(c)), 201);
}

/** DELETE /platform/organizations/:slug/members/invitations/:id — revoke, or (the invitee) decline. */
export async function revokeInvitation(c: Context<AppEnv>): Promise<Response> {
  await deleteInvitation(authed(c), orgSlug(c), invitationId(c));
  return c.body(null, 204);
}

/** PATCH /platform/organizations/:slug/members/:gotrue_id {role_id} */
export async function patchMember(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  const userId = memberId(c);
  const body = await jsonBody(c, AssignRoleBody);
  return c.json(await changeMemberRole(authed(c), slug, { userId, roleId: body.role_id }));
}

/** PUT /platform/organizations/:slug/members/:gotrue_id/roles/:role_id — assign that role. */
export async function putMemberRole(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  const userId = memberId(c);
  const roleId = roleIdParam(c);
  await jsonBody(c, PutRoleBody);
  return c.json(await changeMemberRole(authed(c), slug, { userId, roleId }));
}

/** DELETE /platform/organizations/:slug/members/:gotrue_id/roles/:role_id — a member's only role: removes them. */
export async function deleteMemberRole(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  const userId = memberId(c);
  const roleId = roleIdParam(c);
  return c.json(await removeMember(authed(c), slug, { userId, roleId }));
}

/** DELETE /platform/organizations/:slug/members/:gotrue_id — remove a member, or leave. */
export async function deleteMember(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  const userId = memberId(c);
  return c.json(await removeMember(authed(c), slug, { userId }));
}

/** GET /platform/organizations/:slug/roles */
export async function getRoles(c: Context<AppEnv>): Promise<Response> {
  return c.json(await listRoles(authed(c), orgSlug(c)));
}

/** GET …/members/reached-free-project-limit — named stub: SupaManager has no free-project limit. */
export async function reachedFreeProjectLimit(c: Context<AppEnv>): Promise<Response> {
  await orgForMember(authed(c), orgSlug(c), "members.read");
  return c.json([]);
}

/** GET …/members/mfa/enforcement — named stub: MFA enforcement (security.enforce_mfa) is not offered. */
export async function mfaEnforcement(c: Context<AppEnv>): Promise<Response> {
  await orgForMember(authed(c), orgSlug(c), "org.read");
  return c.json({ enforced: false });
}
