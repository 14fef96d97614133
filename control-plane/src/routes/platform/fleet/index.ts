import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { assertInstanceAdmin } from "../../../services/fleet/hosts.js";
import { hostFlagRoute, listHostsRoute, listRegionsRoute, patchHostRoute, removeHostRoute } from "./hosts.js";
import { createJoinTokenRoute } from "./join-tokens.js";
import { listReleasesRoute } from "./releases.js";
import { getRolloutRoute, listRolloutsRoute, startRolloutRoute, stopRolloutRoute } from "./upgrades.js";

/** Hosts, regions, join tokens, releases and fleet upgrades: instance admin only (everyone else gets 403). */
export function fleetRoutes() {
  const app = new Hono<AppEnv>();
  // Checked here first so a non-admin gets 403 whatever the path parameters (services check again).
  app.use("*", async (c, next) => {
    assertInstanceAdmin(authed(c));
    await next();
  });
  app.post("/join-tokens", createJoinTokenRoute);
  app.get("/hosts", listHostsRoute);
  app.post("/hosts/:id/cordon", hostFlagRoute("cordon"));
  app.post("/hosts/:id/uncordon", hostFlagRoute("uncordon"));
  app.post("/hosts/:id/drain", hostFlagRoute("drain"));
  app.patch("/hosts/:id", patchHostRoute);
  app.delete("/hosts/:id", removeHostRoute);
  app.get("/regions", listRegionsRoute);
  app.get("/releases", listReleasesRoute);
  app.post("/upgrades", startRolloutRoute);
  app.get("/upgrades", listRolloutsRoute);
  app.get("/upgrades/:id", getRolloutRoute);
  app.post("/upgrades/:id/stop", stopRolloutRoute);
  return app;
}
