import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { availableRegionsRoute } from "./available-regions.js";
import { createProjectRoute } from "./create-project.js";
import { pauseProjectRoute, pauseStatusRoute, restartProjectRoute, restoreProjectRoute } from "./lifecycle.js";
import { listProjectsRoute } from "./list-projects.js";
import { deleteProjectRoute, getProjectRoute, getProjectStatusRoute, updateProjectRoute } from "./project.js";

export function projectRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/", listProjectsRoute);
  app.post("/", createProjectRoute);
  // Before /:ref, which would otherwise take "available-regions" for a (malformed) ref.
  app.get("/available-regions", availableRegionsRoute);
  app.get("/:ref", getProjectRoute);
  app.patch("/:ref", updateProjectRoute);
  app.delete("/:ref", deleteProjectRoute);
  app.get("/:ref/status", getProjectStatusRoute);
  app.post("/:ref/pause", pauseProjectRoute);
  app.get("/:ref/pause/status", pauseStatusRoute);
  app.post("/:ref/restore", restoreProjectRoute);
  app.post("/:ref/restart", restartProjectRoute);
  app.post("/:ref/restart-services", restartProjectRoute);
  return app;
}
