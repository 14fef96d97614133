import { ROLE_IDS } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import {
  addMember,
  auditActions,
  createOrg,
  createTeam,
  json,
  type TeamFixture,
} from "../../../test-support/org-fixtures.js";

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
});
afterEach(async () => {
  await t.close();
});

type Member = { gotrue_id: string; primary_email: string; username: string; role_ids: number[] };

const base = (slug: string) => `/platform/organizations/${slug}`;

async function members(slug: string, token: string): Promise<Member[]> {
  const res = await t.request(`${base(slug)}/members`, { token });
  expect(res.status).toBe(200);
  return json<Member[]>(res);
}

async function roleOf(team: TeamFixture, user: TestUser): Promise<number[] | undefined> {
  return (await members(team.slug, team.owner.token)).find((m) => m.gotrue_id === user.userId)?.role_ids;
}

describe("GET members and roles", () => {
  it("lists every member with one role id, in Studio's Member shape, for every role", async () => {
    const team = await createTeam(t);
    for (const user of Object.values(team.members)) {
      const list = await members(team.slug, user.token);
      for (const m of list) expectMatchesSchema("Member", m);
      expect(list.map((m) => [m.primary_email, m.role_ids])).toEqual([
        [team.members.owner.email, [ROLE_IDS.owner]],
        [team.members.administrator.email, [ROLE_IDS.administrator]],
        [team.members.developer.email, [ROLE_IDS.developer]],
        [team.members.read_only.email, [ROLE_IDS.read_only]],
      ]);
      expect(JSON.stringify(list)).not.toMatch(/password|hash/i);
    }
  });

  it("lists the four base roles with Studio's exact names", async () => {
    const team = await createTeam(t);
    const res = await t.request(`${base(team.slug)}/roles`, { token: team.members.read_only.token });
    expect(res.status).toBe(200);
    const body = await json<{ org_scoped_roles: Record<string, unknown>[]; project_scoped_roles: unknown[] }>(res);
    expect(body.project_scoped_roles).toEqual([]);
    expect(body.org_scoped_roles.map((r) => [r.id, r.name, r.base_role_id, r.project_ids])).toEqual([
      [1, "Owner", 1, null],
      [2, "Administrator", 2, null],
      [3, "Developer", 3, null],
      [4, "Read-only", 4, null],
    ]);
    for (const r of body.org_scoped_roles) expect(typeof r.description).toBe("string");
  });

  it("answers the named stubs", async () => {
    const team = await createTeam(t);
    const token = team.members.developer.token;
    expect(await json(await t.request(`${base(team.slug)}/members/reached-free-project-limit`, { token }))).toEqual([]);
    expect(await json(await t.request(`${base(team.slug)}/members/mfa/enforcement`, { token }))).toEqual({
      enforced: false,
    });
  });
});

describe("POST members/invitations (validation and who may invite; the flow is in invitations.test.ts)", () => {
  it("answers 409 for an existing member", async () => {
    const team = await createTeam(t);
    const res = await t.request(`${base(team.slug)}/members/invitations`, {
      method: "POST",
      token: team.owner.token,
      json: { email: team.members.developer.email, role_id: ROLE_IDS.owner },
    });
    expect(res.status).toBe(409);
    expect(await roleOf(team, team.members.developer)).toEqual([ROLE_IDS.developer]);
  });

  it.each([
    ["no body fields", {}],
    ["empty emails", { emails: [], role_id: 3 }],
    ["bad email", { emails: ["nope"], role_id: 3 }],
    ["missing role", { emails: ["a@example.test"] }],
    ["role as string", { email: "a@example.test", role_id: "3" }],
    ["unknown role id", { email: "a@example.test", role_id: 9 }],
    ["project-scoped invite", { email: "a@example.test", role_id: 3, role_scoped_projects: ["abc"] }],
    ["too many emails", { emails: Array.from({ length: 51 }, (_, i) => `u${i}@example.test`), role_id: 3 }],
  ])("rejects %s with 400", async (_name, body) => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    const res = await t.request(`${base(org.slug)}/members/invitations`, {
      method: "POST",
      token: owner.token,
      json: body,
    });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message.length).toBeGreaterThan(0);
  });

  it.each([
    ["developer", "read_only", 403],
    ["read_only", "read_only", 403],
    ["administrator", "owner", 403],
    ["administrator", "administrator", 201],
    ["owner", "owner", 201],
  ] as const)("%s inviting a %s answers %i, and nobody is a member before accepting", async (actor, role, status) => {
    const team = await createTeam(t);
    const newcomer = await signUpAndLogin(t);
    const res = await t.request(`${base(team.slug)}/members/invitations`, {
      method: "POST",
      token: team.members[actor].token,
      json: { email: newcomer.email, role_id: ROLE_IDS[role] },
    });
    expect(res.status).toBe(status);
    const isMember = (await members(team.slug, team.owner.token)).some((m) => m.gotrue_id === newcomer.userId);
    expect(isMember).toBe(false);
    const pending = await json<{ invitations: { invited_email: string }[] }>(
      await t.request(`${base(team.slug)}/members/invitations`, { token: team.owner.token }),
    );
    expect(pending.invitations.map((i) => i.invited_email)).toEqual(status === 201 ? [newcomer.email] : []);
  });
});

describe("changing roles", () => {
  it("PATCH and PUT change a member's role and record it", async () => {
    const team = await createTeam(t);
    const dev = team.members.developer;
    const patch = await t.request(`${base(team.slug)}/members/${dev.userId}`, {
      method: "PATCH",
      token: team.members.administrator.token,
      json: { role_id: ROLE_IDS.read_only },
    });
    expect(patch.status, await patch.clone().text()).toBe(200);
    expectMatchesSchema("Member", await json(patch));
    expect(await roleOf(team, dev)).toEqual([ROLE_IDS.read_only]);

    const put = await t.request(`${base(team.slug)}/members/${dev.userId}/roles/${ROLE_IDS.administrator}`, {
      method: "PUT",
      token: team.owner.token,
      json: { name: "Administrator", role_scoped_projects: [] },
    });
    expect(put.status, await put.clone().text()).toBe(200);
    expect(await roleOf(team, dev)).toEqual([ROLE_IDS.administrator]);

    const audit = await auditActions(t, team.slug, team.owner.token);
    expect(audit.slice(0, 2).map((a) => [a.action.name, a.action.metadata[0]?.from, a.action.metadata[0]?.to])).toEqual(
      [
        ["member.role_change", "read_only", "administrator"],
        ["member.role_change", "developer", "read_only"],
      ],
    );
  });

  it.each([
    ["developer changes someone", "developer", "read_only", ROLE_IDS.developer, 403],
    ["read-only changes someone", "read_only", "developer", ROLE_IDS.administrator, 403],
    ["administrator promotes to owner", "administrator", "developer", ROLE_IDS.owner, 403],
    ["administrator demotes the owner", "administrator", "owner", ROLE_IDS.developer, 403],
  ] as const)("%s → %i", async (_name, actor, target, roleId, status) => {
    const team = await createTeam(t);
    const before = await roleOf(team, team.members[target]);
    const res = await t.request(`${base(team.slug)}/members/${team.members[target].userId}`, {
      method: "PATCH",
      token: team.members[actor].token,
      json: { role_id: roleId },
    });
    expect(res.status).toBe(status);
    expect(await roleOf(team, team.members[target])).toEqual(before);
  });

  it("never demotes the last owner, but an owner may hand over first", async () => {
    const team = await createTeam(t);
    const self = `${base(team.slug)}/members/${team.owner.userId}`;
    const demote = await t.request(self, {
      method: "PATCH",
      token: team.owner.token,
      json: { role_id: ROLE_IDS.administrator },
    });
    expect(demote.status).toBe(409);
    expect((await json<{ message: string }>(demote)).message).toMatch(/at least one Owner/);

    const promote = await t.request(`${base(team.slug)}/members/${team.members.administrator.userId}`, {
      method: "PATCH",
      token: team.owner.token,
      json: { role_id: ROLE_IDS.owner },
    });
    expect(promote.status).toBe(200);
    const handOver = await t.request(self, {
      method: "PATCH",
      token: team.owner.token,
      json: { role_id: ROLE_IDS.developer },
    });
    expect(handOver.status).toBe(200);
    expect(await roleOf(team, team.owner)).toEqual([ROLE_IDS.developer]);
  });

  it.each([
    ["unknown role id", { role_id: 7 }, 400],
    ["missing role id", {}, 400],
    ["non-numeric role id", { role_id: "owner" }, 400],
  ] as const)("rejects %s", async (_name, body, status) => {
    const team = await createTeam(t);
    const res = await t.request(`${base(team.slug)}/members/${team.members.developer.userId}`, {
      method: "PATCH",
      token: team.owner.token,
      json: body,
    });
    expect(res.status).toBe(status);
  });

  it("answers 404 for someone who is not a member, or a malformed id", async () => {
    const team = await createTeam(t);
    for (const id of [team.outsider.userId, "not-a-uuid"]) {
      const res = await t.request(`${base(team.slug)}/members/${id}`, {
        method: "PATCH",
        token: team.owner.token,
        json: { role_id: ROLE_IDS.developer },
      });
      expect(res.status).toBe(404);
    }
  });
});

describe("removing members", () => {
  it("an administrator removes a developer; the removed member loses access", async () => {
    const team = await createTeam(t);
    const dev = team.members.developer;
    const res = await t.request(`${base(team.slug)}/members/${dev.userId}`, {
      method: "DELETE",
      token: team.members.administrator.token,
    });
    expect(res.status).toBe(200);
    expect((await t.request(base(team.slug), { token: dev.token })).status).toBe(404);
    const audit = await auditActions(t, team.slug, team.owner.token);
    expect(audit[0]?.action.name).toBe("member.remove");
  });

  it("unassigning a member's only role removes them; a role they do not hold is 404", async () => {
    const team = await createTeam(t);
    const ro = team.members.read_only;
    const wrong = await t.request(`${base(team.slug)}/members/${ro.userId}/roles/${ROLE_IDS.developer}`, {
      method: "DELETE",
      token: team.owner.token,
    });
    expect(wrong.status).toBe(404);
    const res = await t.request(`${base(team.slug)}/members/${ro.userId}/roles/${ROLE_IDS.read_only}`, {
      method: "DELETE",
      token: team.owner.token,
    });
    expect(res.status).toBe(200);
    expect(await roleOf(team, ro)).toBeUndefined();
  });

  it.each([
    ["developer removes read-only", "developer", "read_only", 403],
    ["read-only removes developer", "read_only", "developer", 403],
    ["administrator removes the owner", "administrator", "owner", 403],
    ["owner removes administrator", "owner", "administrator", 200],
  ] as const)("%s → %i", async (_name, actor, target, status) => {
    const team = await createTeam(t);
    const res = await t.request(`${base(team.slug)}/members/${team.members[target].userId}`, {
      method: "DELETE",
      token: team.members[actor].token,
    });
    expect(res.status).toBe(status);
    expect((await roleOf(team, team.members[target])) === undefined).toBe(status === 200);
  });

  it.each(["developer", "read_only", "administrator"] as const)("a %s may leave", async (role) => {
    const team = await createTeam(t);
    const me = team.members[role];
    const res = await t.request(`${base(team.slug)}/members/${me.userId}`, { method: "DELETE", token: me.token });
    expect(res.status).toBe(200);
    expect(await roleOf(team, me)).toBeUndefined();
    const audit = await auditActions(t, team.slug, team.owner.token);
    expect(audit[0]).toMatchObject({ action: { name: "member.leave" }, actor: { user_id: me.userId } });
  });

  it("the last owner can neither leave nor be removed; with a second owner they can", async () => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    const leave = await t.request(`${base(org.slug)}/members/${owner.userId}`, {
      method: "DELETE",
      token: owner.token,
    });
    expect(leave.status).toBe(409);
    const unassign = await t.request(`${base(org.slug)}/members/${owner.userId}/roles/${ROLE_IDS.owner}`, {
      method: "DELETE",
      token: owner.token,
    });
    expect(unassign.status).toBe(409);

    const second = await signUpAndLogin(t);
    await addMember(t, org, second, "owner");
    const removed = await t.request(`${base(org.slug)}/members/${owner.userId}`, {
      method: "DELETE",
      token: second.token,
    });
    expect(removed.status).toBe(200);
    const lastLeave = await t.request(`${base(org.slug)}/members/${second.userId}`, {
      method: "DELETE",
      token: second.token,
    });
    expect(lastLeave.status).toBe(409);
    expect((await members(org.slug, second.token)).map((m) => m.gotrue_id)).toEqual([second.userId]);
  });

  it("concurrent demotions of two owners leave at least one owner", async () => {
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    const second = await signUpAndLogin(t);
    await addMember(t, org, second, "owner");
    const results = await Promise.all(
      [owner, second].map((u) =>
        t.request(`${base(org.slug)}/members/${u.userId}`, {
          method: "PATCH",
          token: u.token,
          json: { role_id: ROLE_IDS.developer },
        }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const owners = (await members(org.slug, owner.token)).filter((m) => m.role_ids[0] === ROLE_IDS.owner);
    expect(owners).toHaveLength(1);
  });
});
