import { Hono } from "hono";
import type { AppEnv } from "../../deps.js";
import { requireAuth } from "../../middleware/auth.js";
import { v1ProjectRoutes } from "./projects/index.js";

/**
 * The Management API subset Studio calls (`/v1/...`), mounted at /v1. Dashboard access tokens
 * authenticate today; personal access tokens come later.
 */
export function v1Routes() {
  const app = new Hono<AppEnv>();
  app.use("*", requireAuth());
  app.route("/projects", v1ProjectRoutes());
  return app;
}
