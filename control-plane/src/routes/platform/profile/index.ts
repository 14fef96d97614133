import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, query } from "../../../lib/validate.js";
import { listAccountAudit } from "../../../services/organizations/audit.js";
import { permissionsFor } from "../../../services/permissions/permissions.js";
import { permissionsV2For } from "../../../services/permissions/permissions-v2.js";
import { getOrCreateProfile, updateProfile } from "../../../services/profiles/profile.js";
import { AuditQuery } from "../organizations/audit.js";
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
  // Newer Studio builds check fine-grained permission ids (services/permissions/permissions-v2.ts).
  app.get("/permissions/v2", async (c) => c.json(await permissionsV2For(authed(c))));
  // The caller's own audit rows (Studio's account audit page), in the organization audit shape.
  app.get("/audit", async (c) => {
    const q = query(c, AuditQuery);
    return c.json(
      await listAccountAudit(authed(c), {
        start: q.iso_timestamp_start ? new Date(q.iso_timestamp_start) : undefined,
        end: q.iso_timestamp_end ? new Date(q.iso_timestamp_end) : undefined,
        limit: q.limit,
      }),
    );
  });
  // STUB: Studio reports "this user opened the dashboard" after sign-in. The sign-in itself is
  // already audited by POST /auth/v1/token (auth.login), so there is nothing more to record.
  app.post("/audit-login", async (c) => {
    await jsonBody(c, z.looseObject({}));
    authed(c);
    return c.json({}, 201);
  });
  return app;
}
