import { describe, expect, it } from "vitest";
import { nativeScrypt } from "../entry/bootstrap.js";
import { parseKeyMaterial, SecretBox, SecretBoxError } from "./aes.js";
import { fromBase64Url, fromHex, timingSafeEqual, toBase64Url, toHex } from "./encoding.js";
import { AccessTokens, TokenError, VERIFIED_TOKENS_MAX } from "./jwt.js";
import { PasswordHasher, portableScrypt } from "./password.js";

const KEY_A = "a".repeat(64);
const KEY_B = Buffer.alloc(32, 7).toString("base64");

describe("SecretBox (AES-256-GCM)", () => {
  it("round-trips and uses a fresh nonce per value", async () => {
    const box = await SecretBox.create(KEY_A);
    const one = await box.encrypt("hunter2", "project:x:db_pass");
    const two = await box.encrypt("hunter2", "project:x:db_pass");
    expect(one).not.toBe(two);
    expect(one).not.toContain("hunter2");
    expect(await box.decrypt(one, "project:x:db_pass")).toBe("hunter2");
  });

  it("refuses a value moved to another owner (AAD mismatch) or tampered with", async () => {
    const box = await SecretBox.create(KEY_A);
    const ct = await box.encrypt("secret", "project:a");
    await expect(box.decrypt(ct, "project:b")).rejects.toBeInstanceOf(SecretBoxError);
    const parts = ct.split(".");
    const body = fromBase64Url(parts[3] as string);
    body[0] = (body[0] ?? 0) ^ 1;
    parts[3] = toBase64Url(body);
    await expect(box.decrypt(parts.join("."), "project:a")).rejects.toThrow(/authentication/);
    await expect(box.decrypt("garbage", "project:a")).rejects.toThrow(/format/);
  });

  it("rotates: values written with an old key still decrypt after the key changes", async () => {
    const old = await SecretBox.create(KEY_A);
    const ct = await old.encrypt("v", "aad");
    const rotated = await SecretBox.create(KEY_B, [KEY_A]);
    expect(rotated.keyId).not.toBe(old.keyId);
    expect(await rotated.decrypt(ct, "aad")).toBe("v");
    expect((await rotated.encrypt("v", "aad")).split(".")[1]).toBe(rotated.keyId);
    const withoutOld = await SecretBox.create(KEY_B);
    await expect(withoutOld.decrypt(ct, "aad")).rejects.toThrow(/no configured encryption key/);
  });

  it.each(["short", "z".repeat(64), "00".repeat(31)])("rejects key material %#", (k) => {
    expect(() => parseKeyMaterial(k)).toThrow(SecretBoxError);
  });
});

describe("PasswordHasher (scrypt)", () => {
  const fast = { ln: 10, r: 8, p: 1 };

  it("verifies the right password and rejects a wrong one", async () => {
    const h = new PasswordHasher(nativeScrypt, fast);
    const stored = await h.hash("correct horse");
    expect(stored).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$[\w-]+\$[\w-]+$/);
    expect(await h.verify("correct horse", stored)).toBe(true);
    expect(await h.verify("correct horsE", stored)).toBe(false);
  });

  it("native and portable scrypt compute the same hash (Node and Workers interoperate)", async () => {
    const stored = await new PasswordHasher(nativeScrypt, fast).hash("pässwörd");
    expect(await new PasswordHasher(portableScrypt, fast).verify("pässwörd", stored)).toBe(true);
  });

  it("uses the production parameters by default", async () => {
    const stored = await new PasswordHasher(nativeScrypt).hash("x");
    expect(stored.startsWith("$scrypt$ln=15,r=8,p=3$")).toBe(true);
  });

  it.each([
    "",
    "$argon2id$v=19$m=65536,t=3,p=4$abc$def",
    "$scrypt$ln=30,r=8,p=1$c2FsdA$aGFzaA", // would need 256 GiB: refused, not attempted
    "$scrypt$ln=10,r=8$c2FsdA$aGFzaA",
  ])("never matches a malformed or hostile stored hash %#", async (stored) => {
    expect(await new PasswordHasher(nativeScrypt, fast).verify("x", stored)).toBe(false);
  });
});

describe("AccessTokens", () => {
  const USER_ID = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b";
  const SESSION_ID = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
  const claims = {
    sub: USER_ID,
    email: "a@b.c",
    session_id: SESSION_ID,
    aal: "aal1" as const,
    role: "authenticated" as const,
  };

  it("signs and verifies, with exp = iat + ttl", async () => {
    let now = 1_800_000_000_000;
    const tokens = new AccessTokens("s".repeat(40), 3600, () => now);
    const { token, expiresAt } = await tokens.sign(claims);
    expect(expiresAt).toBe(now / 1000 + 3600);
    expect(await tokens.verify(token)).toMatchObject({ sub: USER_ID, session_id: SESSION_ID });
    now += 3601_000;
    await expect(tokens.verify(token)).rejects.toMatchObject({ reason: "expired" });
  });

  it("rejects a token signed with another secret, or alg none", async () => {
    const a = new AccessTokens("a".repeat(40), 3600, Date.now);
    const b = new AccessTokens("b".repeat(40), 3600, Date.now);
    const { token } = await a.sign(claims);
    await expect(b.verify(token)).rejects.toBeInstanceOf(TokenError);
    const [, payload] = token.split(".");
    const none = `${toBase64Url(new TextEncoder().encode('{"alg":"none","typ":"JWT"}'))}.${payload}.`;
    await expect(a.verify(none)).rejects.toMatchObject({ reason: "invalid" });
  });
});

describe("AccessTokens: verified tokens are remembered (ADR 0042)", () => {
  const claims = {
    sub: "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b",
    email: "a@b.c",
    session_id: "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
    aal: "aal1" as const,
    role: "authenticated" as const,
  };

  it("a remembered token still expires at its exp, to the second", async () => {
    let now = 1_800_000_000_000;
    const tokens = new AccessTokens("s".repeat(40), 60, () => now);
    const { token } = await tokens.sign(claims);
    expect(await tokens.verify(token)).toMatchObject({ sub: claims.sub });
    expect(tokens.verifiedSize).toBe(1);
    now += 59_999;
    expect(await tokens.verify(token)).toMatchObject({ session_id: claims.session_id });
    now += 1;
    await expect(tokens.verify(token)).rejects.toMatchObject({ reason: "expired" });
    expect(tokens.verifiedSize).toBe(0);
    await expect(tokens.verify(token)).rejects.toMatchObject({ reason: "expired" });
  });

  it("only the exact string that verified is remembered: an altered token is checked afresh", async () => {
    const tokens = new AccessTokens("s".repeat(40), 3600, Date.now);
    const { token } = await tokens.sign(claims);
    await tokens.verify(token);
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const forged = JSON.parse(new TextDecoder().decode(fromBase64Url(payload))) as Record<string, unknown>;
    forged.sub = "00000000-0000-4000-8000-000000000000";
    const altered = `${header}.${toBase64Url(new TextEncoder().encode(JSON.stringify(forged)))}.${signature}`;
    await expect(tokens.verify(altered)).rejects.toMatchObject({ reason: "invalid" });
    const flipped = `${token.slice(0, -2)}${token.at(-2) === "A" ? "B" : "A"}${token.at(-1)}`;
    await expect(tokens.verify(flipped)).rejects.toMatchObject({ reason: "invalid" });
    expect(tokens.verifiedSize).toBe(1);
  });

  it("another key never accepts a token this one remembered", async () => {
    const a = new AccessTokens("a".repeat(40), 3600, Date.now);
    const b = new AccessTokens("b".repeat(40), 3600, Date.now);
    const { token } = await a.sign(claims);
    await a.verify(token);
    await expect(b.verify(token)).rejects.toBeInstanceOf(TokenError);
  });

  it("remembers at most VERIFIED_TOKENS_MAX tokens", async () => {
    let now = 1_800_000_000_000;
    const tokens = new AccessTokens("s".repeat(40), 3600, () => now);
    for (let i = 0; i < VERIFIED_TOKENS_MAX + 5; i++) {
      now += 1000; // a new iat: a new token
      await tokens.verify((await tokens.sign(claims)).token);
    }
    expect(tokens.verifiedSize).toBe(VERIFIED_TOKENS_MAX);
  });
});

describe("encoding helpers", () => {
  it("hex round-trips and rejects junk", () => {
    expect(toHex(fromHex("00ff10"))).toBe("00ff10");
    expect(() => fromHex("xyz")).toThrow();
  });
  it("timingSafeEqual compares content and length", () => {
    expect(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(timingSafeEqual(new Uint8Array([1]), new Uint8Array([1, 0]))).toBe(false);
  });
});
