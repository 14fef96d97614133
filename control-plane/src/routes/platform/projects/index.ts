import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { createProjectRoute } from "./create-project.js";
import { listProjectsRoute } from "./list-projects.js";
import { deleteProjectRoute, getProjectRoute, getProjectStatusRoute, updateProjectRoute } from "./project.js";

export function projectRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/", listProjectsRoute);
  app.post("/", createProjectRoute);
  app.get("/:ref", getProjectRoute);
  app.patch("/:ref", updateProjectRoute);
  app.delete("/:ref", deleteProjectRoute);
  app.get("/:ref/status", getProjectStatusRoute);
  return app;
}
