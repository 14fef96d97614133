import { Hono } from "hono";
import type { AppEnv } from "../../deps.js";
import { requireAuth } from "../../middleware/auth.js";
import {
  studioAuthConfigGet,
  studioAuthConfigPatch,
  studioAuthHooksPatch,
  studioAuthTemplateGet,
  studioAuthTemplateReset,
} from "../auth-config.js";
import { authUserRoutes } from "./auth-users/index.js";
import { deleteInstanceTarget, getInstanceTarget, putInstanceTarget, testInstanceTarget } from "./backup-targets.js";
import { databaseBackupRoutes } from "./database/backups.js";
import { fleetRoutes } from "./fleet/index.js";
import { organizationRoutes } from "./organizations/index.js";
import { pgMetaRoutes } from "./pg-meta/index.js";
import { profileRoutes } from "./profile/index.js";
import { projectRoutes } from "./projects/index.js";
import { signup } from "./signup.js";
import { storageRoutes } from "./storage/index.js";
import { stubRoutes } from "./stubs/index.js";

/** Studio's platform API, mounted at /platform. Everything but signup needs a session. */
export function platformRoutes() {
  const app = new Hono<AppEnv>();
  app.post("/signup", signup);
  // STUB, before requireAuth: Studio asks for its feature flags on the sign-in page too. There are
  // none (an empty map makes Studio use its built-in defaults), and a 401 made it retry.
  app.get("/telemetry/feature-flags", (c) => c.json({}));
  app.use("*", requireAuth());
  app.route("/profile", profileRoutes());
  app.route("/organizations", organizationRoutes());
  app.route("/projects", projectRoutes());
  app.route("/pg-meta", pgMetaRoutes());
  app.route("/fleet", fleetRoutes());
  app.route("/database", databaseBackupRoutes());
  // The project's auth settings (routes/auth-config.ts), before the auth users' routes.
  // `_` is Studio's placeholder ref: left to the stubs.
  app.get("/auth/:ref/config", (c, next) => (c.req.param("ref") === "_" ? next() : studioAuthConfigGet(c)));
  app.patch("/auth/:ref/config", studioAuthConfigPatch);
  app.patch("/auth/:ref/config/hooks", studioAuthHooksPatch);
  app.get("/auth/:ref/templates/:template", studioAuthTemplateGet);
  app.post("/auth/:ref/templates/:template/reset", studioAuthTemplateReset);
  app.route("/auth", authUserRoutes());
  app.route("/storage", storageRoutes());
  // The instance's backup target (instance admin); organizations' are under /organizations/{slug}.
  app.get("/backup-target", getInstanceTarget);
  app.put("/backup-target", putInstanceTarget);
  app.delete("/backup-target", deleteInstanceTarget);
  app.post("/backup-target/test", testInstanceTarget);
  app.route("/", stubRoutes());
  return app;
}
