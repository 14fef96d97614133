import type { Context } from "hono";
import type { JWK } from "jose";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, shape } from "../../../lib/validate.js";
import { projectForMember } from "../../../services/organizations/access.js";
import { getProject } from "../../../services/projects/get.js";
import { keyId } from "../../../services/secrets/api-keys.js";
import { publicJwks } from "../../../services/secrets/generate.js";
import { loadProjectSecrets } from "../../../services/secrets/store.js";
import { RefParam } from "../../platform/projects/schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** GET /v1/projects/:ref/branches — STUB: there is no branching, so a project has no branches. */
export async function listBranchesRoute(c: Context<AppEnv>): Promise<Response> {
  await getProject(authed(c), refOf(c));
  return c.json([]);
}

/**
 * GET /v1/projects/:ref/ssl-enforcement — the truth about TLS: the stack's Postgres accepts plain
 * connections and nothing enforces TLS (the same `ssl_enforced: false` as the settings page).
 */
export async function sslEnforcementRoute(c: Context<AppEnv>): Promise<Response> {
  await getProject(authed(c), refOf(c));
  return c.json({ currentConfig: { database: false }, appliedSuccessfully: true });
}

/**
 * GET /v1/projects/:ref/network-restrictions — there are no network restrictions: every address
 * may connect (subject to the host's own firewall), and the feature is not offered, which Studio
 * shows from `entitlement: "disallowed"`.
 */
export async function networkRestrictionsRoute(c: Context<AppEnv>): Promise<Response> {
  await getProject(authed(c), refOf(c));
  return c.json({
    entitlement: "disallowed",
    config: { dbAllowedCidrs: ["0.0.0.0/0"], dbAllowedCidrsV6: ["::/0"] },
    status: "applied",
  });
}

/**
 * POST /v1/projects/:ref/network-bans/retrieve — STUB: nothing bans client addresses (there is
 * no fail2ban-style ban list in the stack), so the list is always empty.
 */
export async function networkBansRoute(c: Context<AppEnv>): Promise<Response> {
  await jsonBody(c, z.looseObject({}));
  await getProject(authed(c), refOf(c));
  return c.json({ banned_ipv4_addresses: [] }, 201);
}

const ASYMMETRIC = ["ES256", "RS256", "EdDSA"] as const;

const SigningKey = z.strictObject({
  id: z.uuid(),
  algorithm: z.enum(["EdDSA", "ES256", "RS256", "HS256"]),
  status: z.enum(["in_use", "previously_used", "revoked", "standby"]),
  public_jwk: z.unknown().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export const SigningKeysResponse = z.strictObject({ keys: z.array(SigningKey) });

/**
 * The project's JWT signing keys from its JWT_KEYS secret: the ES256 key GoTrue signs sessions
 * with (`in_use`, with its public JWK) and the legacy HS256 secret that signed the anon and
 * service_role keys and still verifies them (`previously_used`; a symmetric key has no public
 * half, so `public_jwk` is null and the secret never leaves here).
 */
async function signingKeys(c: Context<AppEnv>): Promise<z.input<typeof SigningKey>[]> {
  const ctx = authed(c);
  const { project } = await projectForMember(ctx, refOf(c), "projects.read");
  const secrets = await loadProjectSecrets(ctx.db, ctx.deps, project.ref);
  const at = project.createdAt.toISOString();
  const keys = JSON.parse(secrets.JWT_KEYS) as JWK[];
  const publics = publicJwks(keys.filter((k) => k.kty !== "oct")).keys;
  const out: z.input<typeof SigningKey>[] = [];
  for (const k of keys) {
    if (k.kty === "oct") {
      out.push({
        id: await keyId(project.ref, "legacy-jwt-secret"),
        algorithm: "HS256",
        status: "previously_used",
        public_jwk: null,
        created_at: at,
        updated_at: at,
      });
      continue;
    }
    const pub = publics.find((p) => p.kid === k.kid);
    const id =
      typeof k.kid === "string" && z.uuid().safeParse(k.kid).success ? k.kid : await keyId(project.ref, `jwk:${k.kid}`);
    out.push({
      id,
      algorithm: ASYMMETRIC.find((a) => a === k.alg) ?? "ES256",
      status: k.key_ops?.includes("sign") ? "in_use" : "standby",
      public_jwk: pub ?? null,
      created_at: at,
      updated_at: at,
    });
  }
  return out;
}

/** GET /v1/projects/:ref/config/auth/signing-keys — every signing key of the project. */
export async function listSigningKeysRoute(c: Context<AppEnv>): Promise<Response> {
  return c.json(shape(SigningKeysResponse, { keys: await signingKeys(c) }));
}

/** GET /v1/projects/:ref/config/auth/signing-keys/legacy — the legacy HS256 JWT secret's entry. */
export async function legacySigningKeyRoute(c: Context<AppEnv>): Promise<Response> {
  const legacy = (await signingKeys(c)).find((k) => k.algorithm === "HS256");
  if (!legacy) throw new Error("a project's JWT_KEYS always carries its legacy secret");
  return c.json(shape(SigningKey, legacy));
}
