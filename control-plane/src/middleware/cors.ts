import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../deps.js";

export interface CorsOptions {
  /** Origins echoed back (never `*`: requests carry credentials). */
  origins: readonly string[];
  allowHeaders: readonly string[];
  allowMethods: readonly string[];
  exposeHeaders: readonly string[];
  maxAge: number;
}

/**
 * CORS with credentials, giving every response the same headers as hono's `cors()` with these
 * options (preflights are hono's own), without touching `c.res` before the handler ran (ADR 0042, addendum).
 * hono's middleware sets its headers on `c.res` before calling the handler; that makes Hono merge
 * the handler's response into a new one afterwards, which turns every JSON answer into a
 * stream-backed Fetch Response that the Node adapter then reads chunk by chunk and writes in two
 * calls. Headers given with `c.header()` before the handler go into the handler's `c.json()` as
 * they are built. A handler that returns a Response of its own (a proxied body) did not take them:
 * those get them afterwards, as before.
 */
export function corsHeaders(opts: CorsOptions): MiddlewareHandler<AppEnv> {
  const preflight = cors({
    origin: (origin) => (opts.origins.includes(origin) ? origin : null),
    credentials: true,
    allowHeaders: [...opts.allowHeaders],
    allowMethods: [...opts.allowMethods],
    exposeHeaders: [...opts.exposeHeaders],
    maxAge: opts.maxAge,
  });
  const expose = opts.exposeHeaders.join(",");
  return async (c, next) => {
    if (c.req.method === "OPTIONS") return preflight(c, next);
    const origin = c.req.header("origin") ?? "";
    const allowed = opts.origins.includes(origin) ? origin : undefined;
    const set = () => {
      if (allowed) c.header("Access-Control-Allow-Origin", allowed);
      c.header("Access-Control-Allow-Credentials", "true");
      if (expose) c.header("Access-Control-Expose-Headers", expose);
      c.header("Vary", "Origin", { append: true });
    };
    set();
    await next();
    if (!c.res.headers.has("access-control-allow-credentials")) set();
  };
}
