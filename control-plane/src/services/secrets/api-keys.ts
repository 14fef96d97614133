import { sha256Hex } from "../../crypto/encoding.js";
import type { AuthedContext } from "../../deps.js";
import { recordAudit } from "../audit/record.js";
import { projectForMember } from "../organizations/access.js";
import { roleCan } from "../permissions/matrix.js";
import { signLegacyKey } from "./generate.js";
import { loadProjectSecrets } from "./store.js";

/** One API key as services hand it to routes (the /v1 api-keys shape is built from it). */
export interface ApiKeyView {
  id: string;
  name: "anon" | "service_role" | "default";
  type: "legacy" | "publishable" | "secret";
  /** Whether the value is a secret (service_role, sb_secret_…) rather than a client-side key. */
  secret: boolean;
  /** The key, or null when it is secret and the caller may not (or did not ask to) see it. */
  value: string | null;
  /** What may be shown of a secret key without revealing it. */
  prefix: string;
  hash: string;
  createdAt: Date;
  /** Whether the project's gateway accepts this key (every legacy key; new keys per release). */
  acceptedByGateway: boolean;
}

/**
 * A deterministic UUID (version 8 layout) for a project's key, so ids are stable across reads
 * without storing them: SHA-256 of `<ref>:<key name>`.
 */
export async function keyId(ref: string, key: string): Promise<string> {
  const h = (await sha256Hex(`api-key:${ref}:${key}`)).slice(0, 32).split("");
  h[12] = "8";
  h[16] = ((Number.parseInt(h[16] as string, 16) & 0x3) | 0x8).toString(16);
  const s = h.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/**
 * A project's API keys: the legacy `anon` / `service_role` JWTs and the new publishable and
 * secret keys. Any member may list them; secret values are only present when the caller's role
 * may read secrets (projects.read_secrets) — for the new secret key, only with `reveal` too.
 */
export async function listApiKeys(ctx: AuthedContext, ref: string, reveal: boolean): Promise<ApiKeyView[]> {
  const { project, role } = await projectForMember(ctx, ref, "projects.read");
  const secrets = await loadProjectSecrets(ctx.db, ctx.deps, project.ref);
  const canReadSecrets = roleCan(role, "projects.read_secrets");
  const opaqueKeys = ctx.deps.releases.get(project.release)?.opaqueKeys ?? false;
  // Legacy JWTs are listed in full to roles that may read secrets (as Supabase's API does, and
  // as `supabase projects api-keys` expects); the new secret keys also need `reveal`.
  const shows = (type: string) => canReadSecrets && (type === "legacy" || reveal);
  const entries = [
    { key: "anon", name: "anon", type: "legacy", secret: false, value: secrets.ANON_KEY },
    { key: "service_role", name: "service_role", type: "legacy", secret: true, value: secrets.SERVICE_ROLE_KEY },
    { key: "publishable", name: "default", type: "publishable", secret: false, value: secrets.PUBLISHABLE_KEY },
    { key: "secret", name: "default", type: "secret", secret: true, value: secrets.SECRET_KEY },
  ] as const;
  return Promise.all(
    entries.map(async (e) => ({
      id: await keyId(project.ref, e.key),
      name: e.name,
      type: e.type,
      secret: e.secret,
      value: e.secret && !shows(e.type) ? null : e.value,
      prefix: e.type === "legacy" ? e.value.slice(0, 5) : e.value.slice(0, e.value.indexOf("_", 3) + 5),
      hash: await sha256Hex(e.value),
      createdAt: project.createdAt,
      acceptedByGateway: e.type === "legacy" || opaqueKeys,
    })),
  );
}

/** The legacy anon/service_role values for GET …/settings, or null when the role may not read secrets. */
export async function legacyKeysFor(
  ctx: AuthedContext,
  ref: string,
): Promise<{ anon: string; serviceRole: string } | null> {
  const { project, role } = await projectForMember(ctx, ref, "projects.read");
  if (!roleCan(role, "projects.read_secrets")) return null;
  const s = await loadProjectSecrets(ctx.db, ctx.deps, project.ref);
  return { anon: s.ANON_KEY, serviceRole: s.SERVICE_ROLE_KEY };
}

/** Longest life of a temporary key (Studio asks for short-lived service-role keys). */
export const TEMPORARY_KEY_MAX_SECONDS = 3600;

/**
 * A short-lived service-role JWT (HS256, the project's JWT secret) for Studio's own calls to the
 * project (storage explorer, realtime inspector). Needs projects.read_secrets; audited.
 */
export async function mintTemporaryKey(
  ctx: AuthedContext,
  ref: string,
  ttlSeconds = TEMPORARY_KEY_MAX_SECONDS,
): Promise<{ apiKey: string; expiresAt: number }> {
  const { project, org } = await projectForMember(ctx, ref, "projects.read_secrets");
  const secrets = await loadProjectSecrets(ctx.db, ctx.deps, project.ref);
  const iat = Math.floor(ctx.deps.clock.now() / 1000);
  const apiKey = await signLegacyKey(secrets.JWT_SECRET, project.ref, "service_role", iat, ttlSeconds);
  // One row, no other write: the audit insert is the whole transaction.
  await recordAudit(ctx.db, ctx.meta, {
    action: "project.api_key.temporary",
    outcome: "success",
    actor: ctx.actor,
    orgId: org.id,
    projectRef: project.ref,
    target: project.ref,
    details: { role: "service_role", expires_in: ttlSeconds },
  });
  return { apiKey, expiresAt: iat + ttlSeconds };
}
