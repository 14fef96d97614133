import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { META_RESOURCES } from "../../../services/pg-meta/resources.js";
import { runQueryRoute } from "./query.js";
import { metaResourceRoute } from "./resources.js";

/** /platform/pg-meta/:ref/* — Studio's database access, carried to the project's postgres-meta by its host agent. */
export function pgMetaRoutes() {
  const app = new Hono<AppEnv>();
  app.post("/:ref/query", runQueryRoute);
  for (const resource of META_RESOURCES) app.get(`/:ref/${resource}`, metaResourceRoute(resource));
  return app;
}
