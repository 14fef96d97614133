import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, shape } from "../../../lib/validate.js";
import { createJoinToken } from "../../../services/fleet/hosts.js";

export const MAX_JOIN_TOKEN_SECONDS = 7 * 24 * 3600;

/** A region code: what hosts enroll into and projects are created in. */
export const RegionCode = z
  .string({ error: "region is required" })
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "region must be lowercase letters, digits and dashes (e.g. eu-1)");

export const CreateJoinTokenBody = z.strictObject({
  region: RegionCode,
  expires_in_seconds: z
    .number()
    .int("expires_in_seconds must be a whole number")
    .min(60, "expires_in_seconds must be at least 60")
    .max(MAX_JOIN_TOKEN_SECONDS, `expires_in_seconds must be at most ${MAX_JOIN_TOKEN_SECONDS} (7 days)`)
    .default(3600),
  uses: z.number().int("uses must be a whole number").min(1, "uses must be at least 1").max(1000).default(1),
});

const JoinTokenResponse = z.object({ token: z.string(), expires_at: z.string(), region: z.string(), uses: z.number() });

/** POST /platform/fleet/join-tokens — instance admin; the token is shown once (stored hashed). */
export async function createJoinTokenRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const body = await jsonBody(c, CreateJoinTokenBody);
  const t = await createJoinToken(ctx, {
    region: body.region,
    expiresInSeconds: body.expires_in_seconds,
    uses: body.uses,
  });
  return c.json(
    shape(JoinTokenResponse, { token: t.token, expires_at: t.expiresAt.toISOString(), region: t.region, uses: t.uses }),
    201,
  );
}
