import { Hono } from "hono";
import type { AppEnv } from "../../deps.js";
import { requireAuth } from "../../middleware/auth.js";
import { logout } from "./logout.js";
import { token } from "./token.js";
import { getUser } from "./user.js";

/** The GoTrue-compatible subset Studio's auth client calls, mounted at /auth/v1. */
export function authRoutes() {
  const app = new Hono<AppEnv>();
  app.post("/token", token);
  app.get("/user", requireAuth(), getUser);
  app.post("/logout", requireAuth(), logout);
  return app;
}
