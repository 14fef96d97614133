import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { listOrgProjects } from "./list-projects.js";

export function organizationRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/:slug/projects", listOrgProjects);
  return app;
}
