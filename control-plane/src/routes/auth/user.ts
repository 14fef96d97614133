import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { users } from "../../db/schema.js";
import type { AppEnv } from "../../deps.js";
import { unauthorized } from "../../errors.js";
import { actorOf } from "../../middleware/auth.js";
import { userResponse } from "../../services/sessions/tokens.js";

/** GET /auth/v1/user — the signed-in account in GoTrue's shape. */
export async function getUser(c: Context<AppEnv>) {
  const actor = actorOf(c);
  const [user] = await c.get("db").select().from(users).where(eq(users.id, actor.userId)).limit(1);
  if (!user) throw unauthorized("Account no longer exists");
  return c.json(userResponse(user));
}
