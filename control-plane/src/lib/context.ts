import type { Context } from "hono";
import type { AppEnv, AuthedContext, ServiceContext } from "../deps.js";
import { actorOf } from "../middleware/auth.js";

/** The service context of a request that may be anonymous. */
export function serviceContext(c: Context<AppEnv>): ServiceContext {
  return { db: c.get("db"), deps: c.get("deps"), meta: c.get("meta") };
}

/** The service context of a signed-in request (requireAuth must have run). */
export function authed(c: Context<AppEnv>): AuthedContext {
  return { ...serviceContext(c), actor: actorOf(c) };
}
