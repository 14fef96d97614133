import { and, eq, isNull } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { sessions } from "../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { createReplicaTestApps, createTestApp, type TestApp } from "../../test-support/harness.js";
import { addMember, createOrg, createProjectViaApi } from "../../test-support/projects-factory.js";
import { countStatements } from "../../test-support/statements.js";
import { SessionCache, sessionCache } from "./cache.js";

/**
 * ADR 0033: a process reuses a session it found live for SUPAMANAGER_SESSION_CHECK_SECONDS (5 s by
 * default). These tests hold the security bound: a revocation made on this process works at
 * once; one made elsewhere (another replica, or straight in the database) within the bound;
 * membership is never cached, so a removed member loses access at once.
 */

const apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function app(env: Record<string, string> = {}): Promise<TestApp> {
  const t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", ...env });
  apps.push(t);
  return t;
}

const profile = (t: TestApp, u: TestUser) => t.request("/platform/profile", { token: u.token });

/** Revoke every live session of `u` in the database, as another process would. */
async function revokeInDatabase(t: TestApp, u: TestUser) {
  await t.deps.database.db
    .update(sessions)
    .set({ revokedAt: new Date(t.clock.now()), revokedReason: "test" })
    .where(and(eq(sessions.userId, u.userId), isNull(sessions.revokedAt)));
}

describe("the session check's cache", () => {
  it("a live session is read from the database once per TTL, not on every request", async () => {
    const t = await app();
    const u = await signUpAndLogin(t);
    expect((await profile(t, u)).status).toBe(200);
    const { statements } = await countStatements(() => profile(t, u));
    expect(statements.some((s) => s.includes('from "sessions"'))).toBe(false);
    t.clock.advance(t.deps.config.sessionCheckSeconds);
    const after = await countStatements(() => profile(t, u));
    expect(after.statements.some((s) => s.includes('from "sessions"'))).toBe(true);
  });

  it("logout on this process stops the token at once", async () => {
    const t = await app();
    const u = await signUpAndLogin(t);
    expect((await profile(t, u)).status).toBe(200); // cached now
    const out = await t.request("/auth/v1/logout?scope=local", { method: "POST", token: u.token });
    expect(out.status).toBe(204);
    expect((await profile(t, u)).status).toBe(401);
  });

  it("a global logout stops every session of the user at once", async () => {
    const t = await app();
    const u = await signUpAndLogin(t);
    const { login } = await import("../../test-support/factories.js");
    const second = await login(t, u.email, u.password);
    expect((await profile(t, u)).status).toBe(200);
    expect((await profile(t, second)).status).toBe(200);
    expect((await t.request("/auth/v1/logout?scope=global", { method: "POST", token: u.token })).status).toBe(204);
    expect((await profile(t, u)).status).toBe(401);
    expect((await profile(t, second)).status).toBe(401);
  });

  it("refresh-token reuse revokes the session at once", async () => {
    const t = await app();
    const u = await signUpAndLogin(t);
    expect((await profile(t, u)).status).toBe(200);
    const refresh = (token: string) =>
      t.request("/auth/v1/token?grant_type=refresh_token", { method: "POST", json: { refresh_token: token } });
    expect((await refresh(u.refreshToken)).status).toBe(200);
    expect((await refresh(u.refreshToken)).status).toBe(400); // reused → session revoked
    expect((await profile(t, u)).status).toBe(401);
  });

  it("a session revoked by another process stops working within SUPAMANAGER_SESSION_CHECK_SECONDS", async () => {
    const t = await app();
    const u = await signUpAndLogin(t);
    expect((await profile(t, u)).status).toBe(200);
    await revokeInDatabase(t, u);
    // Inside the bound the cached answer may still be used…
    t.clock.advance(t.deps.config.sessionCheckSeconds - 1);
    expect((await profile(t, u)).status).toBe(200);
    // …and once it has passed, never.
    t.clock.advance(1);
    expect((await profile(t, u)).status).toBe(401);
  });

  it("with SUPAMANAGER_SESSION_CHECK_SECONDS=0 every request reads the session", async () => {
    const t = await app({ SUPAMANAGER_SESSION_CHECK_SECONDS: "0" });
    const u = await signUpAndLogin(t);
    expect((await profile(t, u)).status).toBe(200);
    await revokeInDatabase(t, u);
    expect((await profile(t, u)).status).toBe(401);
  });

  it("logout on one replica stops the token on another within the bound", async () => {
    const [a, b] = await createReplicaTestApps(2, { SUPAMANAGER_ALLOW_SIGNUP: "true" });
    if (!a || !b) throw new Error("two replicas");
    apps.push(a, b);
    const u = await signUpAndLogin(a);
    expect((await profile(b, u)).status).toBe(200); // b caches it
    expect((await a.request("/auth/v1/logout?scope=local", { method: "POST", token: u.token })).status).toBe(204);
    expect((await profile(a, u)).status).toBe(401);
    b.clock.advance(b.deps.config.sessionCheckSeconds);
    expect((await profile(b, u)).status).toBe(401);
  });

  it("membership is not cached: a removed member loses the project at once", async () => {
    const t = await app();
    const owner = await signUpAndLogin(t);
    const dev = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    await addMember(t, org, dev, "developer");
    const { ref } = await createProjectViaApi(t, owner, org);
    expect((await t.request(`/platform/projects/${ref}/status`, { token: dev.token })).status).toBe(200);
    const removed = await t.request(`/platform/organizations/${org.slug}/members/${dev.userId}`, {
      method: "DELETE",
      token: owner.token,
    });
    expect(removed.status, await removed.clone().text()).toBeLessThan(300);
    expect((await t.request(`/platform/projects/${ref}/status`, { token: dev.token })).status).toBe(404);
    expect((await t.request(`/platform/projects/${ref}`, { token: dev.token })).status).toBe(404);
    expect((await t.request(`/platform/organizations/${org.slug}/projects`, { token: dev.token })).status).toBe(404);
  });

  it("a request that read a session just before this process revoked it does not put it back", () => {
    const clock = { now: () => 1_000 };
    const cache = new SessionCache({ clock, config: { sessionCheckSeconds: 5 } as never });
    const actor = { userId: "u", email: "e", sessionId: "s", isInstanceAdmin: false };
    cache.remember(actor);
    cache.forget(["s"]);
    cache.remember(actor); // the late writer
    expect(cache.get("s", "u")).toBeUndefined();
    expect(cache.get("s", "other-user")).toBeUndefined();
    expect(sessionCache({ clock, config: { sessionCheckSeconds: 5 } as never })).not.toBe(cache);
  });
});
