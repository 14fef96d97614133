import { expect } from "vitest";

/** Small fetch helpers for talking to a running control plane over real HTTP. */

export const PASSWORD = "correct horse battery staple";

export function uniqueEmail(prefix = "entry"): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.test`;
}

export async function call(
  base: string,
  path: string,
  init: RequestInit & { token?: string; json?: unknown } = {},
): Promise<Response> {
  const { token, json, headers, ...rest } = init;
  const h = new Headers(headers);
  if (token) h.set("authorization", `Bearer ${token}`);
  if (json !== undefined) h.set("content-type", "application/json");
  return fetch(new URL(path, base), {
    ...rest,
    headers: h,
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
}

export async function signup(base: string, email: string, password = PASSWORD): Promise<void> {
  const res = await call(base, "/platform/signup", { method: "POST", json: { email, password } });
  expect(res.status, await res.clone().text()).toBe(201);
}

export async function login(base: string, email: string, password = PASSWORD): Promise<string> {
  const res = await call(base, "/auth/v1/token?grant_type=password", { method: "POST", json: { email, password } });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

export async function profile(base: string, token: string): Promise<{ id: number | string; primary_email: string }> {
  const res = await call(base, "/platform/profile", { token });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { id: number | string; primary_email: string };
}
