import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody } from "../../../lib/validate.js";
import { permissionsFor } from "../../../services/permissions/permissions.js";
import { getOrCreateProfile, updateProfile } from "../../../services/profiles/profile.js";
import { accessTokenRoutes } from "./access-tokens.js";

export const UpdateProfileBody = z.strictObject({
  first_name: z.string().max(100).nullish(),
  last_name: z.string().max(100).nullish(),
  username: z.string().min(1).max(64).optional(),
  mobile: z.string().max(40).nullish(),
  primary_email: z.string().optional(),
});

export function profileRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => c.json(await getOrCreateProfile(authed(c))));
  app.post("/", async (c) => c.json(await getOrCreateProfile(authed(c)), 201));
  app.patch("/", async (c) => {
    const body = await jsonBody(c, UpdateProfileBody);
    const { primary_email: _ignored, ...fields } = body;
    return c.json(await updateProfile(authed(c), fields));
  });
  app.route("/access-tokens", accessTokenRoutes());
  app.get("/permissions", async (c) => c.json(await permissionsFor(authed(c))));
  return app;
}
