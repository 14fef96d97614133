import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { serviceContext } from "../../lib/context.js";
import { jsonBody, query } from "../../lib/validate.js";
import { passwordGrant, refreshGrant } from "../../services/sessions/tokens.js";

export const PasswordGrantBody = z.object({
  email: z.string().trim().min(1, "email is required").max(320),
  password: z.string().min(1, "password is required").max(1024),
  // Studio sends a captcha token; we accept and ignore it.
  gotrue_meta_security: z.object({ captcha_token: z.string().nullish() }).partial().nullish(),
});

export const RefreshGrantBody = z.object({
  refresh_token: z.string().min(1, "refresh_token is required").max(512),
});

const TokenQuery = z.object({
  grant_type: z.enum(["password", "refresh_token"], { message: "grant_type must be password or refresh_token" }),
});

/** POST /auth/v1/token?grant_type=password|refresh_token */
export async function token(c: Context<AppEnv>) {
  const { grant_type } = query(c, TokenQuery);
  const ctx = serviceContext(c);
  if (grant_type === "password") {
    const body = await jsonBody(c, PasswordGrantBody);
    return c.json(await passwordGrant(ctx, { email: body.email, password: body.password }));
  }
  const body = await jsonBody(c, RefreshGrantBody);
  return c.json(await refreshGrant(ctx, { refreshToken: body.refresh_token }));
}
