import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { authed } from "../../lib/context.js";
import { query } from "../../lib/validate.js";
import { logout as logoutService } from "../../services/sessions/tokens.js";

const LogoutQuery = z.object({ scope: z.enum(["global", "local", "others"]).default("global") });

/** POST /auth/v1/logout?scope=global|local|others — GoTrue answers 204. */
export async function logout(c: Context<AppEnv>) {
  const { scope } = query(c, LogoutQuery);
  await logoutService(authed(c), scope);
  return c.body(null, 204);
}
