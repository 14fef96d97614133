import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { randomBytes, sha256Hex, toBase64Url, toHex, utf8 } from "../../crypto/encoding.js";
import { SECRET_VARIABLES, type SecretVariable } from "../../releases/variables.js";

/**
 * The secrets we generate and store per project (services/secrets/store.ts). POSTGRES_PASSWORD
 * is not among them: it is the `db_pass` given at creation, stored in projects.db_pass_encrypted;
 * nor AUTH_SMTP_PASS, which the project's auth settings hold (services/auth-settings/).
 */
export type StoredSecretName = Exclude<SecretVariable, "POSTGRES_PASSWORD" | "AUTH_SMTP_PASS">;
export const STORED_SECRET_NAMES = SECRET_VARIABLES.filter(
  (n): n is StoredSecretName => n !== "POSTGRES_PASSWORD" && n !== "AUTH_SMTP_PASS",
) as readonly StoredSecretName[];

export type ProjectSecrets = Record<StoredSecretName, string>;

/** The legacy API keys live ten years, as on Supabase's platform. */
export const LEGACY_KEY_TTL_SECONDS = 10 * 365 * 24 * 3600;

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";

/** `length` characters drawn uniformly from `alphabet` with a CSPRNG (rejection sampling, no modulo bias). */
export function randomString(length: number, alphabet = ALNUM): string {
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b >= limit) continue;
      out += alphabet[b % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

const randomHex = (chars: number) => toHex(randomBytes(chars / 2));

/**
 * A new-style API key in the platform's shape, `sb_<kind>_<22 random>_<8 checksum>`. The
 * checksum is ours (first 8 hex digits of SHA-256 of the rest); nothing validates it, the
 * gateway matches keys as opaque strings.
 */
export async function newOpaqueKey(kind: "publishable" | "secret"): Promise<string> {
  const body = `sb_${kind}_${randomString(22)}`;
  return `${body}_${(await sha256Hex(body)).slice(0, 8)}`;
}

/** An HS256 legacy key (`anon` / `service_role`) signed with the project's JWT secret. */
export async function signLegacyKey(
  jwtSecret: string,
  ref: string,
  role: "anon" | "service_role",
  iat: number,
  ttlSeconds = LEGACY_KEY_TTL_SECONDS,
): Promise<string> {
  return new SignJWT({ role, ref })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("supabase")
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(utf8.encode(jwtSecret));
}

/**
 * The legacy JWT secret as a symmetric JWK, verify-only. GoTrue's GOTRUE_JWT_KEYS and the
 * verifiers' JWKS (PostgREST, Realtime, Storage) carry it so that HS256 tokens (the legacy
 * keys, older sessions) keep verifying next to the ES256 ones (docs/secrets.md).
 */
async function legacyOctJwk(jwtSecret: string): Promise<JWK> {
  return {
    kty: "oct",
    k: toBase64Url(utf8.encode(jwtSecret)),
    kid: `legacy-${(await sha256Hex(`kid:${jwtSecret}`)).slice(0, 12)}`,
    alg: "HS256",
    use: "sig",
    key_ops: ["verify"],
  };
}

/** An ES256 signing key: the private JWK (GoTrue signs with it; only one key may have "sign"). */
async function newSigningJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: crypto.randomUUID(), alg: "ES256", use: "sig", key_ops: ["sign", "verify"] };
}

/** JWT_JWKS from JWT_KEYS: the public half of each asymmetric key, and the legacy secret as is. */
export function publicJwks(keys: JWK[]): { keys: JWK[] } {
  return {
    keys: keys.map((k) => {
      if (k.kty === "oct") return k;
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = k;
      return { ...pub, key_ops: ["verify"] };
    }),
  };
}

/**
 * Generate a project's secrets with a CSPRNG. Values in `existing` are kept and the others are
 * derived from them where they depend on each other (the legacy keys are signed with
 * JWT_SECRET, JWT_JWKS is the public side of JWT_KEYS), so filling in missing secrets of an
 * older project stays consistent. Shapes: docs/secrets.md.
 */
export async function generateProjectSecrets(
  ref: string,
  nowMs: number,
  existing: Partial<ProjectSecrets> = {},
): Promise<ProjectSecrets> {
  const iat = Math.floor(nowMs / 1000);
  const jwtSecret = existing.JWT_SECRET ?? randomString(64);
  const jwtKeys = existing.JWT_KEYS ?? JSON.stringify([await newSigningJwk(), await legacyOctJwk(jwtSecret)]);
  const secrets: ProjectSecrets = {
    JWT_SECRET: jwtSecret,
    ANON_KEY: existing.ANON_KEY ?? (await signLegacyKey(jwtSecret, ref, "anon", iat)),
    SERVICE_ROLE_KEY: existing.SERVICE_ROLE_KEY ?? (await signLegacyKey(jwtSecret, ref, "service_role", iat)),
    PUBLISHABLE_KEY: existing.PUBLISHABLE_KEY ?? (await newOpaqueKey("publishable")),
    SECRET_KEY: existing.SECRET_KEY ?? (await newOpaqueKey("secret")),
    JWT_KEYS: jwtKeys,
    JWT_JWKS: existing.JWT_JWKS ?? JSON.stringify(publicJwks(JSON.parse(jwtKeys) as JWK[])),
    SECRET_KEY_BASE: existing.SECRET_KEY_BASE ?? randomString(64),
    VAULT_ENC_KEY: existing.VAULT_ENC_KEY ?? randomString(32),
    DB_ENC_KEY: existing.DB_ENC_KEY ?? randomString(16),
    PG_META_CRYPTO_KEY: existing.PG_META_CRYPTO_KEY ?? randomString(32),
    LOGFLARE_PUBLIC_ACCESS_TOKEN: existing.LOGFLARE_PUBLIC_ACCESS_TOKEN ?? randomString(48),
    LOGFLARE_PRIVATE_ACCESS_TOKEN: existing.LOGFLARE_PRIVATE_ACCESS_TOKEN ?? randomString(48),
    S3_PROTOCOL_ACCESS_KEY_ID: existing.S3_PROTOCOL_ACCESS_KEY_ID ?? randomHex(32),
    S3_PROTOCOL_ACCESS_KEY_SECRET: existing.S3_PROTOCOL_ACCESS_KEY_SECRET ?? randomHex(64),
    PGSODIUM_ROOT_KEY: existing.PGSODIUM_ROOT_KEY ?? randomHex(64),
    DASHBOARD_USERNAME: existing.DASHBOARD_USERNAME ?? `dashboard_${randomString(12, LOWER_ALNUM)}`,
    DASHBOARD_PASSWORD: existing.DASHBOARD_PASSWORD ?? randomString(32),
    READ_ONLY_PASSWORD: existing.READ_ONLY_PASSWORD ?? randomHex(32),
  };
  return secrets;
}
