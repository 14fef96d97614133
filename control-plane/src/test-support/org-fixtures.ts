import type { OrgRole } from "@supamanager/shared";
import { ROLE_IDS } from "@supamanager/shared";
import { expect } from "vitest";
import { signUpAndLogin, type TestUser } from "./factories.js";
import type { TestApp } from "./harness.js";

/** Test fixtures for the organization routes (imported by tests only). */

export interface OrgFixture {
  slug: string;
  id: number;
  owner: TestUser;
}

export async function createOrg(t: TestApp, owner: TestUser, name = "Acme"): Promise<OrgFixture> {
  const res = await t.request("/platform/organizations", {
    method: "POST",
    token: owner.token,
    json: { name, tier: "tier_free" },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  const body = (await res.json()) as { slug: string; id: number };
  return { slug: body.slug, id: body.id, owner };
}

/**
 * Add an existing account to the organization with `role`: `by` (the owner by default) invites
 * its address, and the account accepts the invitation with its own session (ADR 0026).
 */
export async function addMember(t: TestApp, org: OrgFixture, user: TestUser, role: OrgRole, by = org.owner) {
  const token = await inviteToken(t, org, user.email, role, by);
  const res = await t.request(`/platform/organizations/${org.slug}/members/invitations/${token}`, {
    method: "POST",
    token: user.token,
  });
  expect(res.status, await res.clone().text()).toBe(201);
}

/** Invite `email` with `role`, acting as `by`; returns the invitation's token. */
export async function inviteToken(t: TestApp, org: OrgFixture, email: string, role: OrgRole, by = org.owner) {
  const res = await t.request(`/platform/organizations/${org.slug}/members/invitations`, {
    method: "POST",
    token: by.token,
    json: { emails: [email], role_id: ROLE_IDS[role] },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  const body = (await res.json()) as { invitations: { token: string }[] };
  return body.invitations[0]?.token as string;
}

export interface TeamFixture extends OrgFixture {
  members: Record<OrgRole, TestUser>;
  outsider: TestUser;
}

/** An organization with one member per role, plus an outsider who owns an organization of their own. */
export async function createTeam(t: TestApp): Promise<TeamFixture> {
  const owner = await signUpAndLogin(t);
  const org = await createOrg(t, owner);
  const administrator = await signUpAndLogin(t);
  const developer = await signUpAndLogin(t);
  const readOnly = await signUpAndLogin(t);
  const outsider = await signUpAndLogin(t);
  await addMember(t, org, administrator, "administrator");
  await addMember(t, org, developer, "developer");
  await addMember(t, org, readOnly, "read_only");
  await createOrg(t, outsider, "Outsider Inc");
  return { ...org, members: { owner, administrator, developer, read_only: readOnly }, outsider };
}

export async function json<T = unknown>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

export interface AuditItem {
  action: { name: string; metadata: Record<string, unknown>[] };
  actor: { user_id?: string; email?: string };
  organization_slug: string;
  timestamp: number;
}

/** The organization's audit action names, newest first, read through the API as its owner. */
export async function auditActions(t: TestApp, slug: string, token: string): Promise<AuditItem[]> {
  const res = await t.request(`/platform/organizations/${slug}/audit`, { token });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await json<{ result: AuditItem[] }>(res)).result;
}
