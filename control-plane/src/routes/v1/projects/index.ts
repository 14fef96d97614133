import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { getApiKeyRoute, legacyApiKeysRoute, listApiKeysRoute } from "./api-keys.js";
import { projectHealthRoute } from "./health.js";
import { v1ProjectManagementRoutes } from "./manage.js";

export function v1ProjectRoutes() {
  const app = new Hono<AppEnv>();
  app.route("/", v1ProjectManagementRoutes());
  app.get("/:ref/api-keys", listApiKeysRoute);
  // Before /:id, which would otherwise take "legacy" for a (malformed) key id.
  app.get("/:ref/api-keys/legacy", legacyApiKeysRoute);
  app.get("/:ref/api-keys/:id", getApiKeyRoute);
  app.get("/:ref/health", projectHealthRoute);
  return app;
}
