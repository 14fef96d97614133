import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { serviceContext } from "../../lib/context.js";
import { jsonBody } from "../../lib/validate.js";
import { signUp } from "../../services/accounts/signup.js";

/** The longest password a new account may choose. */
export const MAX_NEW_PASSWORD_LENGTH = 128;

export const SignupBody = z.object({
  email: z.email("email must be a valid address").max(320),
  password: z
    .string()
    .min(8, "password must be at least 8 characters")
    // Bounded so that hashing it stays cheap (scrypt runs on every sign-up and login).
    .max(MAX_NEW_PASSWORD_LENGTH, `password must be at most ${MAX_NEW_PASSWORD_LENGTH} characters`),
  hcaptchaToken: z.string().nullish(),
  redirectTo: z.string().nullish(),
});

/** POST /platform/signup — creates a dashboard account (see services/accounts/signup.ts for who may). */
export async function signup(c: Context<AppEnv>) {
  const body = await jsonBody(c, SignupBody);
  const account = await signUp(serviceContext(c), body);
  return c.json({ id: account.id, email: account.email, created_at: account.createdAt.toISOString() }, 201);
}
