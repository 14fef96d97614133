import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, query, shape } from "../../../lib/validate.js";
import { mintTemporaryKey, TEMPORARY_KEY_MAX_SECONDS } from "../../../services/secrets/api-keys.js";
import { RefParam } from "./schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** `authorization_exp`: how long the key lives, in seconds (1 … 3600, default 3600). Other keys are ignored. */
export const TemporaryKeyQuery = z.object({
  authorization_exp: z
    .string()
    .regex(/^\d{1,6}$/, "authorization_exp must be a whole number of seconds")
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, "authorization_exp must be at least 1")
        .max(TEMPORARY_KEY_MAX_SECONDS, `authorization_exp must be at most ${TEMPORARY_KEY_MAX_SECONDS}`),
    )
    .optional(),
});

export const TemporaryKeyResponse = z.object({ api_key: z.string() });

/**
 * POST /platform/projects/:ref/api-keys/temporary → {api_key}: a short-lived service-role JWT
 * for Studio's own calls to the project. Roles that may read secrets only (403 otherwise).
 */
export async function temporaryApiKeyRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const q = query(c, TemporaryKeyQuery);
  const { apiKey } = await mintTemporaryKey(authed(c), ref, q.authorization_exp);
  return c.json(shape(TemporaryKeyResponse, { api_key: apiKey }));
}
