import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { serviceContext } from "../../lib/context.js";
import { jsonBody } from "../../lib/validate.js";
import { signUp } from "../../services/accounts/signup.js";

export const SignupBody = z.object({
  email: z.email("email must be a valid address").max(320),
  password: z
    .string()
    .min(8, "password must be at least 8 characters")
    .max(1024, "password must be at most 1024 characters"),
  hcaptchaToken: z.string().nullish(),
  redirectTo: z.string().nullish(),
});

/** POST /platform/signup — creates a dashboard account (see services/accounts/signup.ts for who may). */
export async function signup(c: Context<AppEnv>) {
  const body = await jsonBody(c, SignupBody);
  const account = await signUp(serviceContext(c), body);
  return c.json({ id: account.id, email: account.email, created_at: account.createdAt.toISOString() }, 201);
}
