import { Hono } from "hono";
import type { AppEnv } from "../../deps.js";
import { connectRoute, tunnelRoute } from "./connect.js";
import { jobProgressRoute } from "./job-progress.js";
import { joinRoute } from "./join.js";
import { uploadUrlsRoute } from "./upload-urls.js";

/** What host agents call, mounted at /agent/v1. No dashboard sessions here: hosts have their own credentials. */
export function agentRoutes() {
  const app = new Hono<AppEnv>();
  app.post("/join", joinRoute);
  app.get("/connect", connectRoute);
  app.get("/tunnel", tunnelRoute);
  app.post("/jobs/:jobId/upload-urls", uploadUrlsRoute);
  app.post("/jobs/:jobId/progress", jobProgressRoute);
  return app;
}
