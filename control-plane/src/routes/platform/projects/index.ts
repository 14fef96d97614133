import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param } from "../../../lib/validate.js";
import { storageConfig, updateStorageConfig } from "../../../services/storage/config.js";
import { temporaryApiKeyRoute } from "./api-keys.js";
import { apiRestRoute } from "./api-rest.js";
import { availableRegionsRoute } from "./available-regions.js";
import {
  getPgbouncerConfigRoute,
  getPgbouncerStatusRoute,
  getPostgrestConfigRoute,
  getSupavisorConfigRoute,
  patchPostgrestConfigRoute,
} from "./config.js";
import { contentRoutes } from "./content/index.js";
import { createProjectRoute } from "./create-project.js";
import { listDatabasesRoute } from "./databases.js";
import { dbPasswordRoute } from "./db-password.js";
import { diskUtilRoute, provisionedDiskRoute } from "./disk.js";
import { pauseProjectRoute, pauseStatusRoute, restartProjectRoute, restoreProjectRoute } from "./lifecycle.js";
import { listProjectsRoute } from "./list-projects.js";
import { projectLogsRoute } from "./logs.js";
import { observabilityRoutes } from "./observability/index.js";
import { deleteProjectRoute, getProjectRoute, getProjectStatusRoute, updateProjectRoute } from "./project.js";
import { getRealtimeConfigRoute, patchRealtimeConfigRoute } from "./realtime.js";
import { RefParam } from "./schemas.js";
import { getSettingsRoute } from "./settings.js";
import { projectStackRoute } from "./stack.js";
import { loadBalancersRoute, projectAddonsRoute, secretsUpdateStatusRoute } from "./studio-extras.js";
import { startUpgradeRoute, upgradeEligibilityRoute, upgradeStatusRoute } from "./upgrade.js";

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
  app.post("/:ref/upgrade", startUpgradeRoute);
  app.get("/:ref/upgrade/eligibility", upgradeEligibilityRoute);
  app.get("/:ref/upgrade/status", upgradeStatusRoute);
  app.post("/:ref/restore", restoreProjectRoute);
  app.post("/:ref/restart", restartProjectRoute);
  app.post("/:ref/restart-services", restartProjectRoute);
  app.get("/:ref/api/rest", apiRestRoute);
  app.route("/:ref/content", contentRoutes());
  app.get("/:ref/settings", getSettingsRoute);
  app.get("/:ref/config/postgrest", getPostgrestConfigRoute);
  app.patch("/:ref/config/postgrest", patchPostgrestConfigRoute);
  app.get("/:ref/config/supavisor", getSupavisorConfigRoute);
  app.get("/:ref/config/pgbouncer", getPgbouncerConfigRoute);
  app.get("/:ref/config/pgbouncer/status", getPgbouncerStatusRoute);
  // `_` is Studio's placeholder ref: left to the stubs.
  app.get("/:ref/config/storage", async (c, next) => {
    const ref = c.req.param("ref");
    if (ref === "_") return next();
    return c.json(await storageConfig(authed(c), param(c, "ref", RefParam, "Project")));
  });
  app.patch("/:ref/config/storage", async (c) => updateStorageConfig(authed(c), param(c, "ref", RefParam, "Project")));
  app.get("/:ref/config/realtime", getRealtimeConfigRoute);
  app.patch("/:ref/config/realtime", patchRealtimeConfigRoute);
  app.get("/:ref/databases", listDatabasesRoute);
  app.get("/:ref/logs", projectLogsRoute);
  app.get("/:ref/stack", projectStackRoute);
  app.post("/:ref/api-keys/temporary", temporaryApiKeyRoute);
  app.route("/:ref", observabilityRoutes());
  app.patch("/:ref/db-password", dbPasswordRoute);
  app.get("/:ref/billing/addons", projectAddonsRoute);
  app.get("/:ref/disk", provisionedDiskRoute);
  app.get("/:ref/disk/custom-config", provisionedDiskRoute);
  app.get("/:ref/disk/util", diskUtilRoute);
  app.get("/:ref/load-balancers", loadBalancersRoute);
  app.get("/:ref/config/secrets/update-status", secretsUpdateStatusRoute);
  return app;
}
