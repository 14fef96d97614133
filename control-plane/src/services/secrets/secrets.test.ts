import { eq } from "drizzle-orm";
import { decodeJwt, decodeProtectedHeader, importJWK, type JWK, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectSecrets, projects } from "../../db/schema.js";
import { SECRET_VARIABLES } from "../../releases/variables.js";
import { signUpAndLogin } from "../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { createOrg, createProjectViaApi, TEST_DB_PASS } from "../../test-support/projects-factory.js";
import { generateProjectSecrets, LEGACY_KEY_TTL_SECONDS, randomString, STORED_SECRET_NAMES } from "./generate.js";
import { loadProjectSecrets, secretAad } from "./store.js";
import { projectVariables } from "./variables.js";

const REF = "abcdefghijklmnopqrst";
const NOW = Date.UTC(2026, 2, 1);
const utf8 = new TextEncoder();

describe("generateProjectSecrets", () => {
  it("produces every stored secret in its documented shape", async () => {
    const s = await generateProjectSecrets(REF, NOW);
    expect(Object.keys(s).sort()).toEqual([...STORED_SECRET_NAMES].sort());
    expect(s.JWT_SECRET).toMatch(/^[A-Za-z0-9]{40,}$/);
    expect(s.SECRET_KEY_BASE).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(s.VAULT_ENC_KEY).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(s.DB_ENC_KEY).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(s.PG_META_CRYPTO_KEY).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(s.PGSODIUM_ROOT_KEY).toMatch(/^[0-9a-f]{64}$/);
    expect(s.READ_ONLY_PASSWORD).toMatch(/^[0-9a-f]{32}$/);
    expect(s.S3_PROTOCOL_ACCESS_KEY_ID).toMatch(/^[0-9a-f]{32}$/);
    expect(s.S3_PROTOCOL_ACCESS_KEY_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(s.LOGFLARE_PUBLIC_ACCESS_TOKEN).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(s.LOGFLARE_PRIVATE_ACCESS_TOKEN).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(s.DASHBOARD_USERNAME).toMatch(/^dashboard_[a-z0-9]{12}$/);
    expect(s.DASHBOARD_PASSWORD).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(s.PUBLISHABLE_KEY).toMatch(/^sb_publishable_[A-Za-z0-9]{22}_[0-9a-f]{8}$/);
    expect(s.SECRET_KEY).toMatch(/^sb_secret_[A-Za-z0-9]{22}_[0-9a-f]{8}$/);
  });

  it.each([
    ["anon", "ANON_KEY"],
    ["service_role", "SERVICE_ROLE_KEY"],
  ] as const)("the %s key is an HS256 JWT signed with JWT_SECRET, valid ten years", async (role, name) => {
    const s = await generateProjectSecrets(REF, NOW);
    expect(decodeProtectedHeader(s[name]).alg).toBe("HS256");
    const { payload } = await jwtVerify(s[name], utf8.encode(s.JWT_SECRET), {
      issuer: "supabase",
      currentDate: new Date(NOW),
    });
    expect(payload).toMatchObject({ role, ref: REF, iss: "supabase", iat: NOW / 1000 });
    expect(payload.exp).toBe(NOW / 1000 + LEGACY_KEY_TTL_SECONDS);
    // Another project's secret does not verify it.
    await expect(jwtVerify(s[name], utf8.encode("x".repeat(64)))).rejects.toThrow();
  });

  it("JWT_KEYS holds one ES256 signing key plus the legacy secret; JWT_JWKS is its public side", async () => {
    const s = await generateProjectSecrets(REF, NOW);
    const keys = JSON.parse(s.JWT_KEYS) as JWK[];
    const signing = keys.filter((k) => k.key_ops?.includes("sign"));
    expect(signing).toHaveLength(1);
    const ec = signing[0] as JWK;
    expect(ec).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    expect(ec.d).toBeTruthy();
    expect(ec.kid).toBeTruthy();
    const oct = keys.find((k) => k.kty === "oct") as JWK;
    expect(oct).toMatchObject({ alg: "HS256", key_ops: ["verify"] });
    expect(Buffer.from(oct.k as string, "base64url").toString()).toBe(s.JWT_SECRET);

    const jwks = JSON.parse(s.JWT_JWKS) as { keys: JWK[] };
    expect(jwks.keys).toHaveLength(2);
    const pub = jwks.keys.find((k) => k.kty === "EC") as JWK;
    expect(pub.d).toBeUndefined();
    expect(pub).toMatchObject({ kid: ec.kid, x: ec.x, y: ec.y, key_ops: ["verify"] });

    // A token signed with the private key verifies with the public one.
    // (WebCrypto refuses a private ECDSA key that lists "verify"; GoTrue's JWK library does not.)
    const priv = await importJWK({ ...ec, key_ops: ["sign"] }, "ES256");
    const token = await new SignJWT({ role: "authenticated" })
      .setProtectedHeader({ alg: "ES256", kid: ec.kid as string })
      .sign(priv);
    await expect(jwtVerify(token, await importJWK(pub, "ES256"))).resolves.toBeTruthy();
  });

  it("keeps existing values and derives dependents from them", async () => {
    const first = await generateProjectSecrets(REF, NOW);
    const again = await generateProjectSecrets(REF, NOW + 1000, {
      JWT_SECRET: first.JWT_SECRET,
      JWT_KEYS: first.JWT_KEYS,
    });
    expect(again.JWT_SECRET).toBe(first.JWT_SECRET);
    expect(again.JWT_JWKS).toBe(first.JWT_JWKS);
    await expect(jwtVerify(again.ANON_KEY, utf8.encode(first.JWT_SECRET))).resolves.toBeTruthy();
    expect(again.VAULT_ENC_KEY).not.toBe(first.VAULT_ENC_KEY);
  });

  it("randomString is uniform enough to use every character of its alphabet", () => {
    const seen = new Set(randomString(4000, "abc0"));
    expect([...seen].sort()).toEqual(["0", "a", "b", "c"]);
  });
});

describe("stored per project", () => {
  let t: TestApp;
  let refs: string[];

  beforeAll(async () => {
    t = await createTestApp();
    const owner = await signUpAndLogin(t);
    const org = await createOrg(t, owner);
    refs = [(await createProjectViaApi(t, owner, org)).ref, (await createProjectViaApi(t, owner, org)).ref];
  });
  afterAll(async () => {
    await t.close();
  });

  it("creation stores every secret encrypted under its own AAD", async () => {
    const ref = refs[0] as string;
    const rows = await t.deps.database.db.select().from(projectSecrets).where(eq(projectSecrets.projectRef, ref));
    expect(rows.map((r) => r.name).sort()).toEqual([...STORED_SECRET_NAMES].sort());
    const secrets = await loadProjectSecrets(t.deps.database.db, t.deps, ref);
    for (const row of rows) {
      expect(row.valueEncrypted).toMatch(new RegExp(`^v1\\.${t.deps.secretBox.keyId}\\.`));
      expect(row.valueEncrypted).not.toContain(secrets[row.name as keyof typeof secrets]);
      // Bound to its name: decrypting as another secret fails.
      await expect(t.deps.secretBox.decrypt(row.valueEncrypted, secretAad(ref, "OTHER"))).rejects.toThrow();
    }
  });

  it("two projects' secrets are all distinct", async () => {
    const values: string[] = [];
    for (const ref of refs) {
      const s = await loadProjectSecrets(t.deps.database.db, t.deps, ref);
      values.push(...Object.values(s));
    }
    expect(values).toHaveLength(STORED_SECRET_NAMES.length * 2);
    expect(new Set(values).size).toBe(values.length);
  });

  it("projectVariables returns every secret variable and the facts", async () => {
    const ref = refs[0] as string;
    const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    if (!row) throw new Error("no row");
    const vars = await projectVariables(
      t.deps,
      t.deps.database.db,
      row,
      { bindAddress: "10.0.0.5" },
      { gateway: 41000 },
    );
    // Every secret is set; the SMTP password is the auth settings' own, empty until configured.
    expect(vars.AUTH_SMTP_PASS).toBe("");
    for (const name of SECRET_VARIABLES.filter((n) => n !== "AUTH_SMTP_PASS")) expect(vars[name], name).toBeTruthy();
    expect(vars.POSTGRES_PASSWORD).toBe(TEST_DB_PASS);
    expect(vars.API_EXTERNAL_URL).toBe("http://10.0.0.5:41000");
    expect(vars.PROJECT_REF).toBe(ref);
  });

  it("a project without stored secrets gets them generated once, consistently, even under concurrency", async () => {
    const ref = refs[1] as string;
    const db = t.deps.database.db;
    const before = await loadProjectSecrets(db, t.deps, ref);
    await db.delete(projectSecrets).where(eq(projectSecrets.projectRef, ref));
    const results = await Promise.all([1, 2, 3, 4].map(() => loadProjectSecrets(db, t.deps, ref)));
    for (const r of results) expect(r).toEqual(results[0]);
    const s = results[0] as NonNullable<(typeof results)[0]>;
    expect(s.JWT_SECRET).not.toBe(before.JWT_SECRET);
    expect(decodeJwt(s.SERVICE_ROLE_KEY).role).toBe("service_role");
    await expect(jwtVerify(s.SERVICE_ROLE_KEY, utf8.encode(s.JWT_SECRET))).resolves.toBeTruthy();
    // Only some missing: the rest is kept and the dependents match what is kept.
    await db.delete(projectSecrets).where(eq(projectSecrets.name, "ANON_KEY"));
    const filled = await loadProjectSecrets(db, t.deps, ref);
    expect(filled.JWT_SECRET).toBe(s.JWT_SECRET);
    await expect(jwtVerify(filled.ANON_KEY, utf8.encode(s.JWT_SECRET))).resolves.toBeTruthy();
    const count = await db.select().from(projectSecrets).where(eq(projectSecrets.projectRef, ref));
    expect(count).toHaveLength(STORED_SECRET_NAMES.length);
  });
});
