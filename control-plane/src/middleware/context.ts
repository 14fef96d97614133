import type { Context, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppDeps, AppEnv } from "../deps.js";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's address: the first X-Forwarded-For hop only when we are told to trust the proxy. */
export function clientIp(c: Context, deps: AppDeps): string | undefined {
  if (deps.config.trustProxy) {
    const fwd = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
    if (fwd) return fwd;
  }
  return deps.remoteAddress?.(c);
}

/**
 * Gives every request an id (Studio sends X-Request-Id; we accept a well-formed one), the deps,
 * a request-scoped logger, and writes one structured log line and one metrics sample per request.
 */
export function requestContext(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = performance.now();
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
    const logger = deps.logger.child({ requestId });
    c.set("deps", deps);
    c.set("db", deps.database.db);
    c.set("logger", logger);
    c.set("requestId", requestId);
    c.set("actor", undefined);
    c.set("meta", { requestId, ip: clientIp(c, deps), userAgent: c.req.header("user-agent")?.slice(0, 512) });
    c.header("X-Request-Id", requestId);
    try {
      await next();
      // A handler's own Response (not built with c.json/c.body) did not take the prepared header.
      if (!c.res.headers.has("x-request-id")) c.header("X-Request-Id", requestId);
    } finally {
      const seconds = (performance.now() - start) / 1000;
      const route = routePath(c) || "unmatched";
      const status = c.res.status;
      deps.metrics.observeRequest({ method: c.req.method, route, status }, seconds);
      const fields = {
        method: c.req.method,
        route,
        path: c.req.path,
        status,
        durationMs: Math.round(seconds * 1000 * 10) / 10,
        userId: c.get("actor")?.userId,
      };
      if (status >= 500) logger.error("request", fields);
      else logger.info("request", fields);
    }
  };
}
