import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { v1AuthConfigGet, v1AuthConfigPatch } from "../../auth-config.js";
import { getSupavisorConfigRoute } from "../../platform/projects/config.js";
import { diskUtilRoute } from "../../platform/projects/disk.js";
import { functionCombinedStatsRoute } from "../../platform/projects/observability/analytics.js";
import { getRealtimeConfigRoute, v1PatchRealtimeConfigRoute } from "../../platform/projects/realtime.js";
import { getApiKeyRoute, legacyApiKeysRoute, listApiKeysRoute } from "./api-keys.js";
import { v1FunctionRoutes } from "./functions.js";
import { projectHealthRoute } from "./health.js";
import { v1ProjectManagementRoutes } from "./manage.js";
import {
  legacySigningKeyRoute,
  listBranchesRoute,
  listSigningKeysRoute,
  networkBansRoute,
  networkRestrictionsRoute,
  sslEnforcementRoute,
} from "./studio-extras.js";
import { v1StartUpgradeRoute, v1UpgradeEligibilityRoute, v1UpgradeStatusRoute } from "./upgrade.js";

export function v1ProjectRoutes() {
  const app = new Hono<AppEnv>();
  app.route("/", v1ProjectManagementRoutes());
  app.route("/", v1FunctionRoutes());
  app.get("/:ref/api-keys", listApiKeysRoute);
  // Before /:id, which would otherwise take "legacy" for a (malformed) key id.
  app.get("/:ref/api-keys/legacy", legacyApiKeysRoute);
  app.get("/:ref/api-keys/:id", getApiKeyRoute);
  app.get("/:ref/health", projectHealthRoute);
  app.get("/:ref/branches", listBranchesRoute);
  app.post("/:ref/upgrade", v1StartUpgradeRoute);
  app.get("/:ref/upgrade/eligibility", v1UpgradeEligibilityRoute);
  app.get("/:ref/upgrade/status", v1UpgradeStatusRoute);
  app.get("/:ref/ssl-enforcement", sslEnforcementRoute);
  app.get("/:ref/network-restrictions", networkRestrictionsRoute);
  app.post("/:ref/network-bans/retrieve", networkBansRoute);
  app.get("/:ref/config/database/pooler", getSupavisorConfigRoute);
  app.get("/:ref/config/auth", v1AuthConfigGet);
  app.patch("/:ref/config/auth", v1AuthConfigPatch);
  app.get("/:ref/analytics/endpoints/functions.combined-stats", functionCombinedStatsRoute);
  app.get("/:ref/config/disk/util", diskUtilRoute);
  app.get("/:ref/config/realtime", getRealtimeConfigRoute);
  app.patch("/:ref/config/realtime", v1PatchRealtimeConfigRoute);
  app.get("/:ref/config/auth/signing-keys", listSigningKeysRoute);
  app.get("/:ref/config/auth/signing-keys/legacy", legacySigningKeyRoute);
  return app;
}
