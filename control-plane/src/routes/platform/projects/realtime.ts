import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, shape } from "../../../lib/validate.js";
import {
  assertMayUpdateRealtimeConfig,
  RealtimeConfigResponse,
  realtimeConfig,
  UpdateRealtimeConfigBody,
  updateRealtimeConfig,
} from "../../../services/realtime/config.js";
import { RefParam } from "./schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** GET /platform/projects/:ref/config/realtime and /v1/projects/:ref/config/realtime (services/realtime). */
export async function getRealtimeConfigRoute(c: Context<AppEnv>): Promise<Response> {
  return c.json(shape(RealtimeConfigResponse, await realtimeConfig(authed(c), refOf(c))));
}

async function patch(c: Context<AppEnv>) {
  const ref = refOf(c);
  // Membership and role before the body: an outsider learns nothing, a reader gets 403.
  await assertMayUpdateRealtimeConfig(authed(c), ref);
  return updateRealtimeConfig(authed(c), ref, await jsonBody(c, UpdateRealtimeConfigBody));
}

/** PATCH /platform/projects/:ref/config/realtime: Studio's form; answers the (unchanged) settings. */
export async function patchRealtimeConfigRoute(c: Context<AppEnv>): Promise<Response> {
  return c.json(shape(RealtimeConfigResponse, await patch(c)));
}

/** PATCH /v1/projects/:ref/config/realtime: the Management API answers 204. */
export async function v1PatchRealtimeConfigRoute(c: Context<AppEnv>): Promise<Response> {
  await patch(c);
  return c.body(null, 204);
}
