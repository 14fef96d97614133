import { Hono } from "hono";
import type { AppEnv } from "../../deps.js";
import { requireAuth } from "../../middleware/auth.js";
import { v1DatabaseRoutes } from "./database.js";
import { v1OrganizationRoutes } from "./organizations.js";
import { v1ProjectRoutes } from "./projects/index.js";
import { v1TypesRoutes } from "./types.js";

/**
 * The Management API (`/v1/...`), mounted at /v1: what Studio, the official `supabase` CLI and
 * `supamanager` call. Dashboard access tokens and personal access tokens (`sbp_…`) both authenticate.
 */
export function v1Routes() {
  const app = new Hono<AppEnv>();
  app.use("*", requireAuth());
  app.route("/organizations", v1OrganizationRoutes());
  app.route("/projects", v1ProjectRoutes());
  app.route("/projects", v1DatabaseRoutes());
  app.route("/projects", v1TypesRoutes());
  return app;
}
