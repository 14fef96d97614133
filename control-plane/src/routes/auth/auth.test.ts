import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { login, signUpAndLogin, uniqueEmail } from "../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
});
afterEach(async () => {
  await t.close();
});

const tokenUrl = (grant: string) => `/auth/v1/token?grant_type=${grant}`;

describe("password grant", () => {
  it("returns a GoTrue session whose access token reads the user", async () => {
    const u = await signUpAndLogin(t);
    const res = await t.request("/auth/v1/user", { token: u.token });
    expect(res.status).toBe(200);
    const user = (await res.json()) as Record<string, unknown>;
    expect(user).toMatchObject({ id: u.userId, email: u.email, aud: "authenticated", role: "authenticated" });
    expect(user).not.toHaveProperty("password_hash");
    expect(user).not.toHaveProperty("passwordHash");
  });

  it("access token carries sub, exp within an hour, aal and the session", async () => {
    const u = await signUpAndLogin(t);
    const [, payload] = u.token.split(".");
    const claims = JSON.parse(Buffer.from(payload as string, "base64url").toString()) as Record<string, unknown>;
    expect(claims.sub).toBe(u.userId);
    expect(claims.aal).toBe("aal1");
    expect(typeof claims.session_id).toBe("string");
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(3600);
  });

  it("answers the same error for an unknown email and a wrong password", async () => {
    const u = await signUpAndLogin(t);
    const wrong = await t.request(tokenUrl("password"), {
      method: "POST",
      json: { email: u.email, password: "nope-nope" },
    });
    const unknown = await t.request(tokenUrl("password"), {
      method: "POST",
      json: { email: uniqueEmail("ghost"), password: "nope-nope" },
    });
    expect(wrong.status).toBe(400);
    expect(unknown.status).toBe(400);
    const a = (await wrong.json()) as { message: string; code: string };
    const b = (await unknown.json()) as { message: string; code: string };
    expect({ message: a.message, code: a.code }).toEqual({ message: b.message, code: b.code });
  });

  it("treats email case-insensitively", async () => {
    const u = await signUpAndLogin(t, "Mixed.Case@Example.Test");
    expect((await login(t, "mixed.case@example.test", u.password)).userId).toBe(u.userId);
  });

  it.each([
    ["missing grant_type", "/auth/v1/token", { email: "a@b.c", password: "x" }],
    ["unknown grant_type", tokenUrl("magic"), { email: "a@b.c", password: "x" }],
    ["missing password", tokenUrl("password"), { email: "a@b.c" }],
    ["wrong types", tokenUrl("password"), { email: 1, password: ["x"] }],
    ["missing refresh token", tokenUrl("refresh_token"), {}],
  ])("rejects %s with 400 and a message", async (_name, url, json) => {
    const res = await t.request(url, { method: "POST", json });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { message: string; code: string };
    expect(body.message.length).toBeGreaterThan(0);
    expect(body.code).toBe("validation_failed");
  });

  it("rejects malformed JSON with 400", async () => {
    const res = await t.request(tokenUrl("password"), {
      method: "POST",
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_json");
  });
});

describe("refresh tokens", () => {
  const refresh = (token: string) =>
    t.request(tokenUrl("refresh_token"), { method: "POST", json: { refresh_token: token } });

  it("rotate: each refresh returns a new refresh token and the old one stops working", async () => {
    const u = await signUpAndLogin(t);
    const first = await refresh(u.refreshToken);
    expect(first.status).toBe(200);
    const next = (await first.json()) as { refresh_token: string; access_token: string };
    expect(next.refresh_token).not.toBe(u.refreshToken);
    const again = await refresh(next.refresh_token);
    expect(again.status).toBe(200);
  });

  it("reuse of a rotated token revokes the whole session family", async () => {
    const u = await signUpAndLogin(t);
    const rotated = (await (await refresh(u.refreshToken)).json()) as { refresh_token: string; access_token: string };
    // The attacker replays the old token.
    const replay = await refresh(u.refreshToken);
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { message: string }).message).toMatch(/already been used/);
    // The legitimate holder's newer token is now dead too, and so are the access tokens.
    expect((await refresh(rotated.refresh_token)).status).toBe(400);
    expect((await t.request("/auth/v1/user", { token: rotated.access_token })).status).toBe(401);
    expect((await t.request("/auth/v1/user", { token: u.token })).status).toBe(401);
  });

  it("reuse in one session leaves the user's other sessions alone", async () => {
    const u = await signUpAndLogin(t);
    const other = await login(t, u.email, u.password);
    await refresh(u.refreshToken);
    await refresh(u.refreshToken);
    expect((await t.request("/auth/v1/user", { token: other.token })).status).toBe(200);
  });

  it("an expired refresh token is refused", async () => {
    const u = await signUpAndLogin(t);
    t.clock.advance(t.deps.config.refreshTokenTtlSeconds + 1);
    expect((await refresh(u.refreshToken)).status).toBe(400);
  });

  it("an unknown refresh token is refused", async () => {
    expect((await refresh("not-a-real-token")).status).toBe(400);
  });
});

describe("access token expiry", () => {
  it("an access token stops working after its exp", async () => {
    const u = await signUpAndLogin(t);
    t.clock.advance(3601);
    const res = await t.request("/auth/v1/user", { token: u.token });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { message: string }).message).toMatch(/expired/);
  });
});

describe("logout", () => {
  it("scope=local ends only this session", async () => {
    const u = await signUpAndLogin(t);
    const other = await login(t, u.email, u.password);
    const res = await t.request("/auth/v1/logout?scope=local", { method: "POST", token: u.token });
    expect(res.status).toBe(204);
    expect((await t.request("/auth/v1/user", { token: u.token })).status).toBe(401);
    expect((await t.request("/auth/v1/user", { token: other.token })).status).toBe(200);
    const r = await t.request(tokenUrl("refresh_token"), { method: "POST", json: { refresh_token: u.refreshToken } });
    expect(r.status).toBe(400);
  });

  it("scope=global ends every session of the user", async () => {
    const u = await signUpAndLogin(t);
    const other = await login(t, u.email, u.password);
    expect((await t.request("/auth/v1/logout?scope=global", { method: "POST", token: u.token })).status).toBe(204);
    expect((await t.request("/auth/v1/user", { token: u.token })).status).toBe(401);
    expect((await t.request("/auth/v1/user", { token: other.token })).status).toBe(401);
  });

  it("rejects an unknown scope", async () => {
    const u = await signUpAndLogin(t);
    expect((await t.request("/auth/v1/logout?scope=everything", { method: "POST", token: u.token })).status).toBe(400);
  });
});

describe("login rate limiting", () => {
  it("limits failures per email with 429 and Retry-After, and the window ends", async () => {
    const u = await signUpAndLogin(t);
    const max = t.deps.config.loginLimit.maxPerEmail;
    for (let i = 0; i < max; i++) {
      const res = await t.request(tokenUrl("password"), {
        method: "POST",
        json: { email: u.email, password: "wrong-password" },
        ip: `10.0.0.${i}`,
      });
      expect(res.status).toBe(400);
    }
    // Even the right password is refused while the email is locked out.
    const locked = await t.request(tokenUrl("password"), {
      method: "POST",
      json: { email: u.email, password: u.password },
      ip: "10.0.1.1",
    });
    expect(locked.status).toBe(429);
    const retry = Number(locked.headers.get("retry-after"));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(t.deps.config.loginLimit.windowSeconds);
    t.clock.advance(retry);
    const after = await t.request(tokenUrl("password"), {
      method: "POST",
      json: { email: u.email, password: u.password },
    });
    expect(after.status).toBe(200);
  });

  it("limits attempts per IP across emails", async () => {
    const limited = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_LOGIN_MAX_PER_IP: "3" });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await limited.request(tokenUrl("password"), {
          method: "POST",
          json: { email: uniqueEmail(), password: "whatever-1" },
          ip: "192.0.2.7",
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      // Another address is not affected.
      const other = await limited.request(tokenUrl("password"), {
        method: "POST",
        json: { email: uniqueEmail(), password: "whatever-1" },
        ip: "192.0.2.8",
      });
      expect(other.status).toBe(400);
    } finally {
      await limited.close();
    }
  });

  it("a successful login clears the email's failure count", async () => {
    const u = await signUpAndLogin(t);
    const max = t.deps.config.loginLimit.maxPerEmail;
    for (let i = 0; i < max - 1; i++) {
      await t.request(tokenUrl("password"), { method: "POST", json: { email: u.email, password: "bad-bad-bad" } });
    }
    await login(t, u.email, u.password);
    for (let i = 0; i < max - 1; i++) {
      await t.request(tokenUrl("password"), { method: "POST", json: { email: u.email, password: "bad-bad-bad" } });
    }
    await login(t, u.email, u.password);
  });
});

// Issue 14, items 3 and 9.
describe("sign-up costs nothing it should not", () => {
  /** Count password hashes (scrypt) the app computes from now on. */
  function countHashes(app: TestApp) {
    const counter = { n: 0 };
    const hash = app.deps.passwords.hash.bind(app.deps.passwords);
    app.deps.passwords.hash = async (password: string) => {
      counter.n++;
      return hash(password);
    };
    return counter;
  }

  it("with sign-up closed, concurrent sign-ups are refused before any password is hashed", async () => {
    const closed = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "false" });
    try {
      await signUpAndLogin(closed); // the first account may always sign up
      const hashes = countHashes(closed);
      const statuses = await Promise.all(
        Array.from({ length: 20 }, () =>
          closed
            .request("/platform/signup", {
              method: "POST",
              json: { email: uniqueEmail("closed"), password: "x".repeat(128) },
            })
            .then((r) => r.status),
        ),
      );
      expect(statuses).toEqual(Array(20).fill(403));
      expect(hashes.n).toBe(0);
    } finally {
      await closed.close();
    }
  });

  it("a new password is at most 128 characters", async () => {
    const res = await t.request("/platform/signup", {
      method: "POST",
      json: { email: uniqueEmail(), password: "x".repeat(129) },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/at most 128/);
  });

  it("sign-ups are limited per address like logins, before hashing", async () => {
    const limited = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_LOGIN_MAX_PER_IP: "3" });
    try {
      const hashes = countHashes(limited);
      const statuses = await Promise.all(
        Array.from({ length: 8 }, () =>
          limited
            .request("/platform/signup", {
              method: "POST",
              json: { email: uniqueEmail("burst"), password: "long enough password" },
              ip: "198.51.100.4",
            })
            .then((r) => r.status),
        ),
      );
      expect(statuses.filter((s) => s === 201)).toHaveLength(3);
      expect(statuses.filter((s) => s === 429)).toHaveLength(5);
      expect(hashes.n).toBe(3);
      const elsewhere = await limited.request("/platform/signup", {
        method: "POST",
        json: { email: uniqueEmail("other"), password: "long enough password" },
        ip: "198.51.100.5",
      });
      expect(elsewhere.status).toBe(201);
    } finally {
      await limited.close();
    }
  });
});

describe("the per-email login limit", () => {
  it("holds under concurrent attempts: no more passwords are checked than the limit allows", async () => {
    const u = await signUpAndLogin(t);
    const max = t.deps.config.loginLimit.maxPerEmail;
    const statuses = await Promise.all(
      Array.from({ length: max * 3 }, (_, i) =>
        t
          .request(tokenUrl("password"), {
            method: "POST",
            json: { email: u.email, password: "wrong-password" },
            ip: `203.0.113.${i + 1}`,
          })
          .then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 400)).toHaveLength(max);
    expect(statuses.filter((s) => s === 429)).toHaveLength(max * 2);
  });

  it("failures from elsewhere do not lock the owner out of an address they signed in from before", async () => {
    const u = await signUpAndLogin(t); // signs in from 127.0.0.1: a known address from now on
    const max = t.deps.config.loginLimit.maxPerEmail;
    for (let i = 0; i < max + 5; i++) {
      await t.request(tokenUrl("password"), {
        method: "POST",
        json: { email: u.email, password: "guess" },
        ip: `203.0.113.${i + 1}`,
      });
    }
    // A stranger's address is locked out ...
    const stranger = await t.request(tokenUrl("password"), {
      method: "POST",
      json: { email: u.email, password: u.password },
      ip: "198.51.100.77",
    });
    expect(stranger.status).toBe(429);
    // ... the owner's known address is not, and its own failures are limited separately.
    const owner = await t.request(tokenUrl("password"), {
      method: "POST",
      json: { email: u.email, password: u.password },
    });
    expect(owner.status).toBe(200);
    for (let i = 0; i < max; i++) {
      const r = await t.request(tokenUrl("password"), { method: "POST", json: { email: u.email, password: "typo" } });
      expect(r.status).toBe(400);
    }
    const ownFailures = await t.request(tokenUrl("password"), {
      method: "POST",
      json: { email: u.email, password: u.password },
    });
    expect(ownFailures.status).toBe(429);
  });
});
