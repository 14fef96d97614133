import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param } from "../../../lib/validate.js";
import {
  createUser,
  deleteFactors,
  deleteUser,
  inviteUser,
  sendToUser,
  updateUser,
} from "../../../services/auth-users/users.js";
import { projectForMember } from "../../../services/organizations/access.js";
import { RefParam } from "../projects/schemas.js";

/**
 * Studio's Authentication → Users actions (platform.d.ts: /platform/auth/{ref}/users,
 * /users/{id}, /users/{id}/factors, /invite, /recover, /magiclink, /otp), through the project's
 * GoTrue admin API (services/auth-users). The Auth settings (`/config`) live elsewhere.
 */

/**
 * The project's ref once the caller is known to be a member who may manage its users: membership
 * and role come before any validation, so an outsider learns nothing (404) and a read_only member
 * gets 403 whatever they sent.
 */
async function refOf(c: Context<AppEnv>): Promise<string> {
  const ref = param(c, "ref", RefParam, "Project");
  await projectForMember(authed(c), ref, "sql.write");
  return ref;
}
const userOf = (c: Context<AppEnv>) => param(c, "id", z.uuid(), "User");

const Email = z.email().max(320);
const Phone = z.string().regex(/^\+?[0-9]{6,20}$/, "phone must be digits with an optional leading +");

export const CreateUserBody = z
  .object({
    email: Email.optional(),
    phone: Phone.optional(),
    password: z.string().min(1).max(1000).optional(),
    email_confirm: z.boolean().optional(),
    phone_confirm: z.boolean().optional(),
    user_metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((b) => b.email !== undefined || b.phone !== undefined, "an email or a phone is required");

// Older Studio builds post the whole user row to /recover and /magiclink; only the address is used.
const ToEmail = z.looseObject({ email: Email });
const ToPhone = z.looseObject({ phone: Phone });
const Ban = z.object({
  ban_duration: z
    .string()
    .regex(/^(none|\d{1,6}(\.\d+)?(ns|us|µs|ms|s|m|h))$/, 'ban_duration is "none" or a duration such as "24h"'),
});

export function authUserRoutes() {
  const app = new Hono<AppEnv>();
  app.post("/:ref/users", async (c) => {
    const ref = await refOf(c);
    const body = await jsonBody(c, CreateUserBody);
    return c.json(await createUser(authed(c), ref, body));
  });
  app.delete("/:ref/users/:id", async (c) => {
    const ref = await refOf(c);
    return c.json(await deleteUser(authed(c), ref, userOf(c)));
  });
  app.patch("/:ref/users/:id", async (c) => {
    const ref = await refOf(c);
    const id = userOf(c);
    const body = await jsonBody(c, Ban);
    return c.json(await updateUser(authed(c), ref, id, body.ban_duration));
  });
  app.delete("/:ref/users/:id/factors", async (c) => {
    const ref = await refOf(c);
    return c.json(await deleteFactors(authed(c), ref, userOf(c)));
  });
  app.post("/:ref/invite", async (c) => {
    const ref = await refOf(c);
    const { email } = await jsonBody(c, z.object({ email: Email }));
    return c.json(await inviteUser(authed(c), ref, email));
  });
  app.post("/:ref/recover", async (c) => {
    const ref = await refOf(c);
    const { email } = await jsonBody(c, ToEmail);
    return c.json(await sendToUser(authed(c), ref, "recover", { email }));
  });
  app.post("/:ref/magiclink", async (c) => {
    const ref = await refOf(c);
    const { email } = await jsonBody(c, ToEmail);
    return c.json(await sendToUser(authed(c), ref, "magiclink", { email }));
  });
  app.post("/:ref/otp", async (c) => {
    const ref = await refOf(c);
    const { phone } = await jsonBody(c, ToPhone);
    return c.json(await sendToUser(authed(c), ref, "otp", { phone }));
  });
  return app;
}
