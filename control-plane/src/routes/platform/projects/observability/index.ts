import { Hono } from "hono";
import type { AppEnv } from "../../../../deps.js";
import { advisorExceptionsRoute, runLintsRoute } from "./advisors.js";

/**
 * Studio's Advisors, Logs and Observability pages of one project (docs/studio-pages.md), mounted
 * at /platform/projects/:ref.
 */
export function observabilityRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/run-lints", runLintsRoute);
  app.get("/notifications/advisor/exceptions", advisorExceptionsRoute);
  return app;
}
