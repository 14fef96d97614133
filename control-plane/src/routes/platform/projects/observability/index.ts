import { Hono } from "hono";
import type { AppEnv } from "../../../../deps.js";
import { advisorExceptionsRoute, runLintsRoute } from "./advisors.js";
import {
  apiCountsRoute,
  apiRequestsCountRoute,
  authMetricsRoute,
  functionCombinedStatsRoute,
  functionResourceUsageRoute,
  infraMonitoringRoute,
  logDrainsRoute,
  logsAllRoute,
  noWarehouseRoute,
  projectMetricsRoute,
  warehouseListRoute,
} from "./analytics.js";

/**
 * Studio's Advisors, Logs and Observability pages of one project (docs/studio-pages.md), mounted
 * at /platform/projects/:ref.
 */
export function observabilityRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/run-lints", runLintsRoute);
  app.get("/notifications/advisor/exceptions", advisorExceptionsRoute);
  app.get("/analytics/endpoints/logs.all", logsAllRoute);
  app.post("/analytics/endpoints/logs.all", logsAllRoute);
  app.get("/analytics/endpoints/usage.api-counts", apiCountsRoute);
  app.get("/analytics/endpoints/usage.api-requests-count", apiRequestsCountRoute);
  app.get("/analytics/endpoints/project.metrics", projectMetricsRoute);
  app.get("/analytics/endpoints/auth.metrics", authMetricsRoute);
  app.get("/analytics/endpoints/functions.combined-stats", functionCombinedStatsRoute);
  app.get("/analytics/endpoints/functions.req-stats", functionCombinedStatsRoute);
  app.get("/analytics/endpoints/functions.resource-usage", functionResourceUsageRoute);
  app.get("/infra-monitoring", infraMonitoringRoute);
  app.get("/analytics/log-drains", logDrainsRoute);
  app.get("/analytics/warehouse/collections", warehouseListRoute);
  app.get("/analytics/warehouse/access-tokens", warehouseListRoute);
  app.get("/analytics/warehouse/endpoints", warehouseListRoute);
  app.get("/analytics/warehouse/*", noWarehouseRoute);
  return app;
}
