import { ROLE_IDS } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { INVITATION_TTL_SECONDS } from "../../../services/members/invitations.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { login, signUpAndLogin, type TestUser, uniqueEmail } from "../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import {
  auditActions,
  createOrg,
  createTeam,
  inviteToken,
  json,
  type OrgFixture,
} from "../../../test-support/org-fixtures.js";

/**
 * Invitations with an acceptance step (ADR 0026), driven with the exact calls Studio makes
 * (apps/studio/data/organization-members/: invitation-create, -token, -accept, -delete), on the
 * real control plane and PostgreSQL.
 */
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
});
afterEach(async () => {
  await t.close();
});

type Created = {
  id: number;
  invited_email: string;
  role_id: number;
  invited_at: string;
  expires_at: string;
  token: string;
  join_path: string;
};
type ByToken = {
  authorized_user: boolean;
  email_match: boolean;
  expired_token: boolean;
  sso_mismatch: boolean;
  token_does_not_exist: boolean;
  invite_id?: number;
  organization_name?: string;
};

const base = (slug: string) => `/platform/organizations/${slug}/members/invitations`;

async function invite(org: OrgFixture, body: unknown, by: TestUser = org.owner) {
  return t.request(base(org.slug), { method: "POST", token: by.token, json: body });
}
const byToken = (org: OrgFixture, token: string, as: TestUser) =>
  t.request(`${base(org.slug)}/${token}`, { token: as.token });
const accept = (org: OrgFixture, token: string, as: TestUser) =>
  t.request(`${base(org.slug)}/${token}`, { method: "POST", token: as.token });
const remove = (org: OrgFixture, id: number, as: TestUser) =>
  t.request(`${base(org.slug)}/${id}`, { method: "DELETE", token: as.token });

async function memberIds(org: OrgFixture): Promise<string[]> {
  const list = await json<{ gotrue_id: string }[]>(
    await t.request(`/platform/organizations/${org.slug}/members`, { token: org.owner.token }),
  );
  return list.map((m) => m.gotrue_id);
}
async function pending(org: OrgFixture, as: TestUser = org.owner) {
  const res = await t.request(base(org.slug), { token: as.token });
  expect(res.status).toBe(200);
  return (await json<{ invitations: { id: number; invited_email: string; role_id: number }[] }>(res)).invitations;
}

describe("inviting, then accepting with the invitee's own session", () => {
  it("adds nobody until the invitee accepts; the invitee joins with the invited role", async () => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner, "Acme Invites");
    const invitee = await signUpAndLogin(t);
    const other = await signUpAndLogin(t);

    // Studio's create call: {email, role_id}.
    const res = await invite(org, { email: invitee.email.toUpperCase(), role_id: ROLE_IDS.developer });
    expect(res.status, await res.clone().text()).toBe(201);
    const [created] = (await json<{ invitations: Created[] }>(res)).invitations;
    expect(created).toMatchObject({ invited_email: invitee.email, role_id: ROLE_IDS.developer });
    expect(created?.join_path).toBe(`/join?token=${created?.token}&slug=${org.slug}`);
    const token = created?.token as string;
    expect(await memberIds(org)).toEqual([owner.userId]);
    expect(await pending(org)).toEqual([
      { id: created?.id, invited_email: invitee.email, role_id: ROLE_IDS.developer, invited_at: created?.invited_at },
    ]);

    // Studio's join page, as the invitee: the organization's name and the invitation's id.
    const mine = await byToken(org, token, invitee);
    expect(mine.status).toBe(200);
    expect(await json<ByToken>(mine)).toEqual({
      authorized_user: true,
      email_match: true,
      expired_token: false,
      sso_mismatch: false,
      token_does_not_exist: false,
      invite_id: created?.id,
      organization_name: "Acme Invites",
    });
    // Anyone else holding the link learns only that it is not theirs, and cannot use it.
    const theirs = await json<ByToken>(await byToken(org, token, other));
    expect(theirs).toEqual({
      authorized_user: true,
      email_match: false,
      expired_token: false,
      sso_mismatch: false,
      token_does_not_exist: false,
    });
    const stolen = await accept(org, token, other);
    expect(stolen.status).toBe(403);
    expect((await json<{ message: string }>(stolen)).message).toMatch(/another e-mail address/);
    expect(await memberIds(org)).toEqual([owner.userId]);

    const joined = await accept(org, token, invitee);
    expect(joined.status, await joined.clone().text()).toBe(201);
    const member = await json(joined);
    expectMatchesSchema("Member", member);
    expect(member).toMatchObject({ gotrue_id: invitee.userId, role_ids: [ROLE_IDS.developer] });
    expect(await memberIds(org)).toEqual([owner.userId, invitee.userId]);
    expect(await pending(org)).toEqual([]);
    // The invitee now sees the organization; the link is spent.
    const orgs = await json<{ slug: string }[]>(await t.request("/platform/organizations", { token: invitee.token }));
    expect(orgs.map((o) => o.slug)).toContain(org.slug);
    expect((await accept(org, token, invitee)).status).toBe(404);
    expect((await byToken(org, token, invitee)).status).toBe(404);

    const audit = await auditActions(t, org.slug, owner.token);
    expect(audit.slice(0, 2).map((a) => [a.action.name, a.actor.user_id])).toEqual([
      ["member.join", invitee.userId],
      ["member.invite", owner.userId],
    ]);
    // The invitee's own account audit shows the join.
    const account = await json<{ result: { action: { name: string } }[] }>(
      await t.request("/platform/profile/audit", { token: invitee.token }),
    );
    expect(account.result.map((r) => r.action.name)).toContain("member.join");
  });

  it("answers the same for an address with and without an account; the latter joins after signing up", async () => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    const known = await signUpAndLogin(t);
    const unknownEmail = uniqueEmail("newcomer");
    const a = await invite(org, { emails: [known.email], role_id: ROLE_IDS.read_only });
    const b = await invite(org, { emails: [unknownEmail], role_id: ROLE_IDS.read_only });
    expect([a.status, b.status]).toEqual([201, 201]);
    const [ia] = (await json<{ invitations: Created[] }>(a)).invitations;
    const [ib] = (await json<{ invitations: Created[] }>(b)).invitations;
    expect(Object.keys(ia ?? {}).sort()).toEqual(Object.keys(ib ?? {}).sort());
    expect(await memberIds(org)).toEqual([owner.userId]);

    const newcomer = await signUpAndLogin(t, unknownEmail);
    const joined = await accept(org, ib?.token as string, newcomer);
    expect(joined.status).toBe(201);
    expect(await memberIds(org)).toEqual([owner.userId, newcomer.userId]);
  });

  it("several addresses at once, deduplicated case-insensitively; inviting again replaces the invitation", async () => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    const x = await signUpAndLogin(t);
    const res = await invite(org, { emails: [x.email, x.email.toUpperCase(), "b@example.test"], role_id: 4 });
    expect((await json<{ invitations: Created[] }>(res)).invitations.map((i) => i.invited_email)).toEqual([
      x.email,
      "b@example.test",
    ]);
    const first = await inviteToken(t, org, x.email, "read_only");
    const second = await inviteToken(t, org, x.email, "administrator");
    expect((await pending(org)).filter((i) => i.invited_email === x.email)).toMatchObject([
      { role_id: ROLE_IDS.administrator },
    ]);
    expect((await accept(org, first, x)).status).toBe(404);
    const joined = await accept(org, second, x);
    expect(await json(joined)).toMatchObject({ role_ids: [ROLE_IDS.administrator] });
  });
});

describe("invitations expire", () => {
  it("an expired invitation is shown as expired, cannot be accepted and leaves the pending list", async () => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    const invitee = await signUpAndLogin(t);
    const token = await inviteToken(t, org, invitee.email, "developer");
    // Sessions last an hour: sign in again after moving the clock.
    t.clock.advance(INVITATION_TTL_SECONDS - 60);
    const before = await login(t, invitee.email, invitee.password);
    expect((await json<ByToken>(await byToken(org, token, before))).expired_token).toBe(false);
    t.clock.advance(120);
    const after = await login(t, invitee.email, invitee.password);
    expect((await json<ByToken>(await byToken(org, token, after))).expired_token).toBe(true);
    const late = await accept(org, token, after);
    expect(late.status).toBe(409);
    expect((await json<{ message: string }>(late)).message).toMatch(/expired/);
    org.owner = await login(t, owner.email, owner.password);
    expect(await memberIds(org)).toEqual([owner.userId]);
    expect(await pending(org)).toEqual([]);
  });
});

describe("declining and revoking", () => {
  it("the invitee declines with DELETE …/invitations/{invite_id}; the link is then dead", async () => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    const invitee = await signUpAndLogin(t);
    const stranger = await signUpAndLogin(t);
    const token = await inviteToken(t, org, invitee.email, "developer");
    const { invite_id } = await json<ByToken>(await byToken(org, token, invitee));
    // Somebody else cannot decline it for them, and learns nothing about the organization.
    expect((await remove(org, invite_id as number, stranger)).status).toBe(404);
    expect((await remove(org, invite_id as number, invitee)).status).toBe(204);
    expect((await byToken(org, token, invitee)).status).toBe(404);
    expect((await accept(org, token, invitee)).status).toBe(404);
    expect(await memberIds(org)).toEqual([owner.userId]);
    expect((await auditActions(t, org.slug, owner.token))[0]?.action.name).toBe("member.invite.decline");
  });

  it("administrators revoke, except Owner invitations; developers and read-only members cannot", async () => {
    const team = await createTeam(t);
    const ownerInvite = (await pending(team)).length;
    expect(ownerInvite).toBe(0);
    const e1 = uniqueEmail("owner-to-be");
    const e2 = uniqueEmail("dev-to-be");
    await inviteToken(t, team, e1, "owner");
    await inviteToken(t, team, e2, "developer");
    const [forOwner, forDev] = await pending(team);
    for (const role of ["developer", "read_only"] as const) {
      expect((await remove(team, forDev?.id as number, team.members[role])).status).toBe(403);
    }
    expect((await remove(team, forOwner?.id as number, team.members.administrator)).status).toBe(403);
    expect((await remove(team, forDev?.id as number, team.members.administrator)).status).toBe(204);
    expect((await remove(team, forOwner?.id as number, team.owner)).status).toBe(204);
    expect((await remove(team, forOwner?.id as number, team.owner)).status).toBe(404);
    expect(await pending(team)).toEqual([]);
    const names = (await auditActions(t, team.slug, team.owner.token)).slice(0, 2).map((a) => a.action.name);
    expect(names).toEqual(["member.invite.revoke", "member.invite.revoke"]);
  });
});

describe("tenant isolation", () => {
  it("a token works only under its own organization; other tenants see nothing of the invitations", async () => {
    const team = await createTeam(t);
    const outsiderOrg = await createOrg(t, team.outsider, "Elsewhere");
    const token = await inviteToken(t, team, team.outsider.email, "developer");
    // The same token under another slug (even one the invitee belongs to) is not found.
    expect((await byToken(outsiderOrg, token, team.outsider)).status).toBe(404);
    expect((await accept(outsiderOrg, token, team.outsider)).status).toBe(404);
    // The outsider may read the join page of their own invitation, but not the list.
    expect((await byToken(team, token, team.outsider)).status).toBe(200);
    expect((await t.request(base(team.slug), { token: team.outsider.token })).status).toBe(404);
    expect((await invite(team, { email: "x@example.test", role_id: 3 }, team.outsider)).status).toBe(404);
    // Malformed tokens and ids are simply not found; no session is 401.
    expect((await byToken(team, "not-a-token", team.outsider)).status).toBe(404);
    expect((await t.request(`${base(team.slug)}/abc`, { method: "DELETE", token: team.owner.token })).status).toBe(404);
    expect((await t.request(`${base(team.slug)}/${token}`)).status).toBe(401);
  });
});
