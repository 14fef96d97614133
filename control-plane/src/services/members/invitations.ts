import { ROLE_IDS } from "@supamanager/shared";
import { and, asc, eq, gt, inArray } from "drizzle-orm";
import { randomToken, sha256Hex } from "../../crypto/encoding.js";
import { organizations, orgInvitations, orgMembers, users } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { conflict, forbidden, notFound } from "../../errors.js";
import { normalizeEmail } from "../accounts/signup.js";
import { recordAudit } from "../audit/record.js";
import { orgForMember } from "../organizations/access.js";
import { lockOrganization } from "../organizations/organizations.js";
import { roleCan } from "../permissions/matrix.js";
import { assertMayTouch, type Member, memberRows, roleForId, toMember } from "./members.js";

/** How long an invitation may be accepted (ADR 0026). */
export const INVITATION_TTL_SECONDS = 7 * 24 * 3600;

/** An item of GET …/members/invitations (Studio's shape). */
export interface Invitation {
  id: number;
  invited_email: string;
  role_id: number;
  invited_at: string;
}

/** A new invitation as its creator sees it once: with the token to pass on (there is no e-mail). */
export interface CreatedInvitation extends Invitation {
  expires_at: string;
  token: string;
  /** Studio's page for the invitee: `/join?token=…&slug=…`. */
  join_path: string;
}

/** GET …/members/invitations/{token} (Studio's InvitationByTokenResponse). */
export interface InvitationByToken {
  authorized_user: boolean;
  email_match: boolean;
  expired_token: boolean;
  sso_mismatch: boolean;
  token_does_not_exist: boolean;
  /** Only when the invitation is addressed to the caller. */
  invite_id?: number;
  organization_name?: string;
}

type InvitationRow = typeof orgInvitations.$inferSelect;

const toInvitation = (row: InvitationRow): Invitation => ({
  id: row.id,
  invited_email: row.email,
  role_id: ROLE_IDS[row.role],
  invited_at: row.createdAt.toISOString(),
});

const nowOf = (ctx: AuthedContext) => new Date(ctx.deps.clock.now());

/**
 * Invite e-mail addresses to the organization with a role (members.invite; an Owner invitation
 * needs members.manage_owners). Nothing is looked up by address, so the answer is the same
 * whether or not an account uses it: nobody is added until the invitee accepts with their own
 * session. Inviting an address again replaces its pending invitation (new token, role, expiry).
 * An address that already belongs to a member is a 409 (the caller can list members anyway).
 */
export async function createInvitations(
  ctx: AuthedContext,
  slug: string,
  input: { emails: string[]; roleId: number },
): Promise<CreatedInvitation[]> {
  const caller = await orgForMember(ctx, slug, "members.invite");
  const role = roleForId(input.roleId);
  assertMayTouch(caller, role);
  const emails = [...new Set(input.emails.map(normalizeEmail))];
  const orgId = caller.org.id;
  const now = nowOf(ctx);
  const expiresAt = new Date(now.getTime() + INVITATION_TTL_SECONDS * 1000);
  return ctx.db.transaction(async (tx) => {
    await lockOrganization(tx, orgId);
    const members = await tx
      .select({ email: users.email })
      .from(orgMembers)
      .innerJoin(users, eq(users.id, orgMembers.userId))
      .where(and(eq(orgMembers.orgId, orgId), inArray(users.email, emails)));
    if (members.length > 0) {
      throw conflict(`Already a member of this organization: ${members.map((m) => m.email).join(", ")}`);
    }
    const created: CreatedInvitation[] = [];
    for (const email of emails) {
      const token = randomToken(32);
      const values = {
        role,
        tokenHash: await sha256Hex(token),
        invitedBy: ctx.actor.userId,
        createdAt: now,
        expiresAt,
      };
      const [row] = await tx
        .insert(orgInvitations)
        .values({ orgId, email, ...values })
        .onConflictDoUpdate({ target: [orgInvitations.orgId, orgInvitations.email], set: values })
        .returning();
      if (!row) throw new Error("invitation upsert returned no row");
      await recordAudit(tx, ctx.meta, {
        action: "member.invite",
        outcome: "success",
        actor: ctx.actor,
        orgId,
        target: email,
        details: { email, role, invitation_id: row.id, expires_at: expiresAt.toISOString() },
      });
      created.push({
        ...toInvitation(row),
        expires_at: expiresAt.toISOString(),
        token,
        join_path: `/join?token=${token}&slug=${encodeURIComponent(caller.org.slug)}`,
      });
    }
    return created;
  });
}

/** The organization's pending (unexpired) invitations, oldest first; members.read. */
export async function listInvitations(ctx: AuthedContext, slug: string): Promise<Invitation[]> {
  const { org } = await orgForMember(ctx, slug, "members.read");
  const rows = await ctx.db
    .select()
    .from(orgInvitations)
    .where(and(eq(orgInvitations.orgId, org.id), gt(orgInvitations.expiresAt, nowOf(ctx))))
    .orderBy(asc(orgInvitations.createdAt), asc(orgInvitations.id));
  return rows.map(toInvitation);
}

/** The invitation `token` of organization `slug` (any signed-in caller), or 404. */
async function invitationByTokenRow(ctx: AuthedContext, slug: string, token: string) {
  const [row] = await ctx.db
    .select({ invitation: orgInvitations, org: organizations })
    .from(orgInvitations)
    .innerJoin(organizations, eq(organizations.id, orgInvitations.orgId))
    .where(and(eq(orgInvitations.tokenHash, await sha256Hex(token)), eq(organizations.slug, slug)))
    .limit(1);
  if (!row) throw notFound("Invitation not found: the link is wrong, or it was accepted, declined or revoked");
  return row;
}

/**
 * What Studio's join page shows for a token. The organization's name and the invitation's id
 * are only told to the account the invitation is addressed to.
 */
export async function invitationByToken(ctx: AuthedContext, slug: string, token: string): Promise<InvitationByToken> {
  const { invitation, org } = await invitationByTokenRow(ctx, slug, token);
  const mine = invitation.email === normalizeEmail(ctx.actor.email);
  return {
    authorized_user: true,
    email_match: mine,
    expired_token: invitation.expiresAt <= nowOf(ctx),
    sso_mismatch: false,
    token_does_not_exist: false,
    ...(mine ? { invite_id: invitation.id, organization_name: org.name } : {}),
  };
}

/**
 * Accept an invitation with the invitee's own session: the caller's e-mail must be the invited
 * one, the invitation unexpired. Adds the membership with the invited role and deletes the
 * invitation, in one transaction with its audit row.
 */
export async function acceptInvitation(ctx: AuthedContext, slug: string, token: string): Promise<Member> {
  const { org } = await invitationByTokenRow(ctx, slug, token);
  return ctx.db.transaction(async (tx) => {
    await lockOrganization(tx, org.id);
    const [invitation] = await tx
      .select()
      .from(orgInvitations)
      .where(and(eq(orgInvitations.orgId, org.id), eq(orgInvitations.tokenHash, await sha256Hex(token))))
      .for("update");
    if (!invitation) throw notFound("Invitation not found: it was accepted, declined or revoked meanwhile");
    if (invitation.email !== normalizeEmail(ctx.actor.email)) {
      throw forbidden("This invitation is for another e-mail address: sign in with the invited account to accept it");
    }
    if (invitation.expiresAt <= nowOf(ctx)) {
      throw conflict("This invitation has expired: ask an administrator of the organization for a new one");
    }
    const [already] = await memberRows(tx, org.id, [ctx.actor.userId]);
    await tx.delete(orgInvitations).where(eq(orgInvitations.id, invitation.id));
    if (already) throw conflict("You are already a member of this organization");
    await tx.insert(orgMembers).values({ orgId: org.id, userId: ctx.actor.userId, role: invitation.role });
    await recordAudit(tx, ctx.meta, {
      action: "member.join",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      target: ctx.actor.userId,
      details: { role: invitation.role, invitation_id: invitation.id, invited_by: invitation.invitedBy },
    });
    const [row] = await memberRows(tx, org.id, [ctx.actor.userId]);
    if (!row) throw new Error("membership vanished while accepting an invitation");
    return toMember(row);
  });
}

/**
 * DELETE …/members/invitations/{id}: an administrator revokes it (members.invite; Owner
 * invitations only by Owners), or the invitee declines it. Anyone else: 403 for a member whose
 * role cannot revoke, 404 for a non-member (as for everything in an organization).
 */
export async function deleteInvitation(ctx: AuthedContext, slug: string, id: number): Promise<void> {
  const [org] = await ctx.db
    .select({ id: organizations.id, role: orgMembers.role })
    .from(organizations)
    .leftJoin(orgMembers, and(eq(orgMembers.orgId, organizations.id), eq(orgMembers.userId, ctx.actor.userId)))
    .where(eq(organizations.slug, slug))
    .limit(1);
  const [invitation] = org
    ? await ctx.db
        .select()
        .from(orgInvitations)
        .where(and(eq(orgInvitations.id, id), eq(orgInvitations.orgId, org.id)))
    : [];
  const mine = invitation !== undefined && invitation.email === normalizeEmail(ctx.actor.email);
  const role = org?.role ?? null;
  const revoking = role !== null && roleCan(role, "members.invite");
  if (!org || (role === null && !mine)) throw notFound(`Organization ${slug} not found`);
  if (!revoking && !mine) throw forbidden(`Your role (${role}) does not allow members.invite`);
  if (!invitation) throw notFound("Invitation not found");
  if (revoking && !mine && role !== null) assertMayTouch({ role }, invitation.role);
  await ctx.db.transaction(async (tx) => {
    await tx.delete(orgInvitations).where(eq(orgInvitations.id, invitation.id));
    await recordAudit(tx, ctx.meta, {
      action: mine ? "member.invite.decline" : "member.invite.revoke",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      target: invitation.email,
      details: { email: invitation.email, role: invitation.role, invitation_id: invitation.id },
    });
  });
}
