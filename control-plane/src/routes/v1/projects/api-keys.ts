import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { notFound } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { param, query, shape } from "../../../lib/validate.js";
import { type ApiKeyView, listApiKeys } from "../../../services/secrets/api-keys.js";
import { projectData } from "../../../services/secrets/studio-data.js";
import { RefParam } from "../../platform/projects/schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** `reveal`: Studio's boolean string; anything else is a 400. */
export const RevealQuery = z.object({
  reveal: z.enum(["true", "false"], { error: "reveal must be true or false" }).optional(),
});

/** One item of GET /v1/projects/:ref/api-keys (ApiKeyResponse). */
const ApiKey = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(["legacy", "publishable", "secret"]),
  api_key: z.string(),
  prefix: z.string().nullable(),
  description: z.string().nullable(),
  hash: z.string().nullable(),
  secret_jwt_template: z.record(z.string(), z.unknown()).nullable(),
  inserted_at: z.string().nullable(),
  updated_at: z.string().nullable(),
});
export const ApiKeysResponse = z.array(ApiKey);

const MASK = "••••••••••••••••";

const DESCRIPTIONS: Record<string, string> = {
  "legacy:anon": "Legacy anon API key",
  "legacy:service_role": "Legacy service_role API key",
  "publishable:default": "Default publishable key: the gateway maps it to the anon role",
  "secret:default": "Default secret key: the gateway maps it to the service_role role",
};

/** What the description says of a new key the project's release does not accept (only what is true). */
const NOT_ACCEPTED = "not accepted by this project's gateway (its release does not map new API keys)";

function description(k: ApiKeyView): string | null {
  if (!k.acceptedByGateway) return `Default ${k.type} key: ${NOT_ACCEPTED}`;
  return DESCRIPTIONS[`${k.type}:${k.name}`] ?? null;
}

function apiKeyItem(k: ApiKeyView): z.input<typeof ApiKey> {
  const secret = k.type === "secret";
  return {
    id: k.id,
    name: k.name,
    type: k.type,
    // A secret key the caller may not (or did not ask to) see: its prefix and a mask.
    api_key: k.value ?? `${k.prefix}${MASK}`,
    prefix: secret ? k.prefix : null,
    description: description(k),
    // The hash identifies a new-style key without revealing it; legacy keys have none on the platform.
    hash: k.type === "legacy" ? null : k.hash,
    // The gateway turns a secret key into a service_role JWT: only where it really does.
    secret_jwt_template: secret && k.acceptedByGateway ? { role: "service_role" } : null,
    inserted_at: k.createdAt.toISOString(),
    updated_at: k.createdAt.toISOString(),
  };
}

const revealOf = (c: Context<AppEnv>) => query(c, RevealQuery).reveal === "true";

/**
 * GET /v1/projects/:ref/api-keys?reveal=true|false — every member may list; the values of
 * `service_role` and secret keys only with reveal=true and a role that may read secrets.
 */
export async function listApiKeysRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const reveal = revealOf(c);
  const keys = await listApiKeys(authed(c), ref, reveal);
  return c.json(shape(ApiKeysResponse, keys.map(apiKeyItem)));
}

/** GET /v1/projects/:ref/api-keys/:id?reveal=… — one key, same rules as the list. */
export async function getApiKeyRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const id = param(c, "id", z.uuid(), "API key");
  const reveal = revealOf(c);
  const key = (await listApiKeys(authed(c), ref, reveal)).find((k) => k.id === id);
  if (!key) throw notFound("API key not found");
  return c.json(shape(ApiKey, apiKeyItem(key)));
}

export const LegacyApiKeysResponse = z.object({ enabled: z.boolean() });

/** GET /v1/projects/:ref/api-keys/legacy → {enabled: true}: the legacy JWT keys always work. */
export async function legacyApiKeysRoute(c: Context<AppEnv>): Promise<Response> {
  await projectData(authed(c), refOf(c));
  return c.json(shape(LegacyApiKeysResponse, { enabled: true }));
}
