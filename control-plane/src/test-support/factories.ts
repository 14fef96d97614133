import { expect } from "vitest";
import type { TestApp } from "./harness.js";

let counter = 0;
/** A unique email per call, so tests never share accounts. */
export function uniqueEmail(prefix = "user"): string {
  counter += 1;
  return `${prefix}-${counter}-${Math.random().toString(36).slice(2, 8)}@example.test`;
}

export interface TestUser {
  email: string;
  password: string;
  userId: string;
  token: string;
  refreshToken: string;
}

/**
 * Sign up and log in a new account. The first account of a fresh database becomes the
 * instance admin; later ones need SUPAMANAGER_ALLOW_SIGNUP=true (the default in createTestApp callers
 * that pass it) — `allowSignup` lets a factory bypass that through the admin path.
 */
export async function signUpAndLogin(
  t: TestApp,
  email = uniqueEmail(),
  password = "correct horse battery",
): Promise<TestUser> {
  const signup = await t.request("/platform/signup", { method: "POST", json: { email, password } });
  expect(signup.status, await signup.clone().text()).toBe(201);
  return login(t, email, password);
}

export async function login(t: TestApp, email: string, password: string): Promise<TestUser> {
  const res = await t.request("/auth/v1/token?grant_type=password", { method: "POST", json: { email, password } });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = (await res.json()) as { access_token: string; refresh_token: string; user: { id: string } };
  return { email, password, userId: body.user.id, token: body.access_token, refreshToken: body.refresh_token };
}
