import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { notFound } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { jsonBody } from "../../../lib/validate.js";
import {
  addMembers,
  changeMemberRole,
  listMembers,
  listRoles,
  removeMember,
} from "../../../services/members/members.js";
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

/**
 * POST /platform/organizations/:slug/members/invitations — SupaManager sends no e-mail, so the
 * "invitation" adds existing accounts directly; answers 201 with the members added.
 */
export async function inviteMembers(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  const body = await jsonBody(c, InviteMembersBody);
  const emails = "emails" in body ? body.emails : [body.email];
  return c.json(await addMembers(authed(c), slug, { emails, roleId: body.role_id }), 201);
}

/**
 * GET /platform/organizations/:slug/members/invitations — named stub: invitations are accepted
 * at once (see inviteMembers), so none is ever pending.
 */
export async function listInvitations(c: Context<AppEnv>): Promise<Response> {
  await orgForMember(authed(c), orgSlug(c), "members.read");
  return c.json({ invitations: [] });
}

/** DELETE /platform/organizations/:slug/members/invitations/:id — there are no pending invitations. */
export async function revokeInvitation(c: Context<AppEnv>): Promise<Response> {
  await orgForMember(authed(c), orgSlug(c), "members.invite");
  throw notFound("Invitation not found (SupaManager adds members directly; nothing is pending)");
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
