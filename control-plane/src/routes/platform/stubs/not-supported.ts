import type { Context, Next } from "hono";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "../../../deps.js";
import { notFound } from "../../../errors.js";

/**
 * True when a route registered AFTER the current one matched this request and would answer it.
 * `app.use` middleware never answers on its own, so an "ALL" route that takes `next` is skipped
 * (Hono's own heuristic for telling middleware from handlers).
 */
function laterHandlerMatched(c: Context<AppEnv>): boolean {
  return matchedRoutes(c)
    .slice(c.req.routeIndex + 1)
    .some((r) => r.method !== "ALL" || r.handler.length < 2);
}

/**
 * The last word on `/platform/*`: a JSON 404 that names the call, so Studio shows a readable
 * error instead of HTML. It is mounted last, and it steps aside for any route that was
 * registered after it (an area mounted later, at /platform or above), so it never shadows a
 * real handler whatever the mounting order.
 */
export async function notSupported(c: Context<AppEnv>, next: Next) {
  if (laterHandlerMatched(c)) return next();
  throw notFound(`${c.req.method} ${c.req.path} is not supported by SupaManager`);
}
