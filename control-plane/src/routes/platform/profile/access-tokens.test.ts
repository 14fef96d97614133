import { asc, like } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog, personalAccessTokens } from "../../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";

let t: TestApp;
let alice: TestUser;
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  alice = await signUpAndLogin(t);
});
afterEach(async () => {
  await t.close();
});

const TOKENS = "/platform/profile/access-tokens";

interface Created {
  id: string;
  name: string;
  token: string;
  token_alias: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
}

async function create(user: TestUser, json: unknown = { name: "ci" }): Promise<Created> {
  const res = await t.request(TOKENS, { method: "POST", token: user.token, json });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as Created;
}

async function auditActions(): Promise<{ action: string; target: string | null }[]> {
  return t.deps.database.db
    .select({ action: auditLog.action, target: auditLog.target })
    .from(auditLog)
    .where(like(auditLog.action, "access_token.%"))
    .orderBy(asc(auditLog.id));
}

describe("creating a personal access token", () => {
  it("returns the token once, shaped sbp_ + 40 lowercase hex, with a display alias", async () => {
    const created = await create(alice, { name: "  laptop  " });
    expect(created.token).toMatch(/^sbp_[0-9a-f]{40}$/);
    expect(created.id).toMatch(/^pat_[a-z0-9]+$/);
    expect(created.name).toBe("laptop");
    expect(created.token_alias).not.toBe(created.token);
    expect(created.token.startsWith(created.token_alias.slice(0, 8))).toBe(true);
    expect(created.token_alias.length).toBeLessThan(20);
    expect(created.expires_at).toBeNull();
    expect(created.last_used_at).toBeNull();
    expect(await auditActions()).toEqual([{ action: "access_token.create", target: created.id }]);
  });

  it("two tokens differ and the database stores only a hash", async () => {
    const a = await create(alice);
    const b = await create(alice);
    expect(a.token).not.toBe(b.token);
    const rows = await t.deps.database.db.select().from(personalAccessTokens);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(a.token);
    expect(dump).not.toContain(b.token);
    for (const r of rows) expect(r.tokenHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("accepts an expiry in the future", async () => {
    const at = new Date(t.clock.now() + 86_400_000).toISOString();
    const created = await create(alice, { name: "day", expires_at: at });
    expect(created.expires_at).toBe(at);
  });

  it.each([
    ["no name", {}],
    ["an empty name", { name: "   " }],
    ["a name too long", { name: "x".repeat(101) }],
    ["a name that is not a string", { name: 42 }],
    ["an expiry that is not a date", { name: "x", expires_at: "tomorrow" }],
    ["an expiry in the past", { name: "x", expires_at: "2020-01-01T00:00:00Z" }],
  ])("rejects %s with 400", async (_case, json) => {
    const res = await t.request(TOKENS, { method: "POST", token: alice.token, json });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/name|expires_at/);
  });
});

describe("listing", () => {
  it("lists the caller's tokens without the token or its hash", async () => {
    const created = await create(alice, { name: "one" });
    const bob = await signUpAndLogin(t);
    await create(bob, { name: "bob's" });
    const res = await t.request(TOKENS, { token: alice.token });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(created.token);
    expect(text).not.toMatch(/token_hash|tokenHash|sbp_[0-9a-f]{40}/);
    const list = JSON.parse(text) as Record<string, unknown>[];
    expect(list).toEqual([
      {
        id: created.id,
        name: "one",
        token_alias: created.token_alias,
        created_at: created.created_at,
        last_used_at: null,
        expires_at: null,
      },
    ]);
  });
});

describe("using a token", () => {
  it("authenticates /platform and /v1 as its owner and records last use at most once a minute", async () => {
    const { token, id } = await create(alice);
    const profile = await t.request("/platform/profile", { token });
    expect(profile.status).toBe(200);
    expect(((await profile.json()) as { primary_email: string }).primary_email).toBe(alice.email);
    expect((await t.request("/v1/projects", { token })).status).toBe(200);

    const lastUsed = async () =>
      ((await (await t.request(TOKENS, { token: alice.token })).json()) as Created[]).find((x) => x.id === id)
        ?.last_used_at;
    const first = await lastUsed();
    expect(first).toBe(new Date(t.clock.now()).toISOString());
    t.clock.advance(30);
    await t.request("/platform/profile", { token });
    expect(await lastUsed()).toBe(first);
    t.clock.advance(31);
    await t.request("/platform/profile", { token });
    expect(await lastUsed()).toBe(new Date(t.clock.now()).toISOString());
  });

  it("stops working once it expires", async () => {
    const { token } = await create(alice, {
      name: "short",
      expires_at: new Date(t.clock.now() + 60_000).toISOString(),
    });
    expect((await t.request("/platform/profile", { token })).status).toBe(200);
    t.clock.advance(61);
    const res = await t.request("/platform/profile", { token });
    expect(res.status).toBe(401);
    expect((await t.request("/v1/projects", { token })).status).toBe(401);
  });

  it.each([
    ["an unknown sbp_ token", `sbp_${"a".repeat(40)}`],
    ["upper-case hex", `sbp_${"A".repeat(40)}`],
    ["too short", `sbp_${"a".repeat(39)}`],
  ])("%s → 401", async (_case, token) => {
    expect((await t.request("/platform/profile", { token })).status).toBe(401);
    expect((await t.request("/v1/projects", { token })).status).toBe(401);
  });

  it("a PAT actor can call logout without breaking it or its token", async () => {
    const { token } = await create(alice);
    expect((await t.request("/auth/v1/logout?scope=local", { method: "POST", token })).status).toBe(204);
    expect((await t.request("/platform/profile", { token })).status).toBe(200);
  });
});

describe("revoking", () => {
  it("deletes the token, which then answers 401, and audits it", async () => {
    const created = await create(alice);
    const res = await t.request(`${TOKENS}/${created.id}`, { method: "DELETE", token: alice.token });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(created.id);
    expect((await t.request("/platform/profile", { token: created.token })).status).toBe(401);
    expect(await (await t.request(TOKENS, { token: alice.token })).json()).toEqual([]);
    expect((await auditActions()).map((r) => r.action)).toEqual(["access_token.create", "access_token.revoke"]);
    const again = await t.request(`${TOKENS}/${created.id}`, { method: "DELETE", token: alice.token });
    expect(again.status).toBe(404);
  });

  it("another user's token answers 404 and stays usable", async () => {
    const bob = await signUpAndLogin(t);
    const bobs = await create(bob);
    for (const path of [`${TOKENS}/${bobs.id}`, `${TOKENS}/not-a-token-id`]) {
      const res = await t.request(path, { method: "DELETE", token: alice.token });
      expect(res.status).toBe(404);
    }
    expect((await t.request("/platform/profile", { token: bobs.token })).status).toBe(200);
  });

  it("needs authentication", async () => {
    expect((await t.request(TOKENS)).status).toBe(401);
    expect((await t.request(TOKENS, { method: "POST", json: { name: "x" } })).status).toBe(401);
  });
});

// Issue 14, item 4: revoking a leaked token must end its access.
describe("a personal access token cannot manage tokens", () => {
  it("creating, listing and revoking with a PAT answer 403; a dashboard session still can", async () => {
    const leaked = await create(alice, { name: "leaked" });
    const other = await create(alice, { name: "other" });
    const attempts: [string, string, unknown?][] = [
      ["POST", TOKENS, { name: "spawned" }],
      ["GET", TOKENS],
      ["DELETE", `${TOKENS}/${other.id}`],
    ];
    for (const [method, path, json] of attempts) {
      const res = await t.request(path, { method, token: leaked.token, ...(json ? { json } : {}) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(((await res.json()) as { message: string }).message).toMatch(/dashboard session/);
    }
    // Nothing was minted or revoked.
    const list = (await (await t.request(TOKENS, { token: alice.token })).json()) as { name: string }[];
    expect(list.map((x) => x.name).sort()).toEqual(["leaked", "other"]);
    // The owner revokes the leaked token from the dashboard: its access ends.
    expect((await t.request(`${TOKENS}/${leaked.id}`, { method: "DELETE", token: alice.token })).status).toBe(200);
    expect((await t.request("/platform/profile", { token: leaked.token })).status).toBe(401);
    // A token may revoke itself (the CLI's logout), which only ends access.
    expect((await t.request(`${TOKENS}/${other.id}`, { method: "DELETE", token: other.token })).status).toBe(200);
    expect((await t.request("/platform/profile", { token: other.token })).status).toBe(401);
  });
});
