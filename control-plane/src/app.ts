import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppDeps, AppEnv } from "./deps.js";
import { ApiError, badRequest, isDatabaseUnavailable } from "./errors.js";
import { requestContext } from "./middleware/context.js";
import { corsHeaders } from "./middleware/cors.js";
import { agentRoutes } from "./routes/agent/index.js";
import { authRoutes } from "./routes/auth/index.js";
import { healthRoutes } from "./routes/health/index.js";
import { platformRoutes } from "./routes/platform/index.js";
import { v1Routes } from "./routes/v1/index.js";

/** Headers Studio and the CLIs send; CORS must allow them with credentials. */
const ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "X-Request-Id",
  "Version",
  "x-connection-encrypted",
  "x-pg-application-name",
  "x-client-info",
  "apikey",
];

/** Retry-After (seconds) while the control plane's database is unavailable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Build the HTTP application. Every runtime's entry file calls this with its own deps. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use("*", requestContext(deps));
  // No NUL character anywhere in the path or query string (PostgreSQL text cannot hold one, and
  // nothing legitimate sends it); bodies are checked by jsonBody (lib/validate.ts).
  app.use("*", async (c, next) => {
    const url = c.req.url;
    const at = url.indexOf("/", url.indexOf("//") + 2);
    const rest = at < 0 ? "" : url.slice(at);
    if (/%00/i.test(rest) || rest.includes(String.fromCharCode(0))) {
      throw badRequest("The URL may not contain NUL characters (%00)");
    }
    await next();
  });
  app.use(
    "*",
    corsHeaders({
      // Echo an allowed origin; never `*`, because requests carry credentials.
      origins: deps.config.corsOrigins,
      allowHeaders: ALLOWED_HEADERS,
      allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      // X-Total-Count: Studio counts an organization's invoices from a HEAD request's header.
      exposeHeaders: ["X-Request-Id", "Retry-After", "X-Total-Count"],
      maxAge: 600,
    }),
  );
  const limitBody = bodyLimit({
    maxSize: deps.config.maxBodyBytes,
    onError: () => {
      throw new ApiError("payload_too_large", `Request body exceeds ${deps.config.maxBodyBytes} bytes`);
    },
  });
  // GET and HEAD requests carry no body to the app (the Fetch API refuses one), and asking for it
  // made the Node adapter build a whole Request object on every read (ADR 0042).
  app.use("*", (c, next) => (c.req.method === "GET" || c.req.method === "HEAD" ? next() : limitBody(c, next)));

  app.route("/", healthRoutes());
  app.route("/auth/v1", authRoutes());
  app.route("/platform", platformRoutes());
  app.route("/v1", v1Routes());
  app.route("/agent/v1", agentRoutes());

  app.notFound((c) =>
    c.json(
      { message: `No route for ${c.req.method} ${c.req.path}`, code: "not_found", requestId: c.get("requestId") },
      404,
    ),
  );

  app.onError((err, c) => {
    const requestId = c.get("requestId");
    if (err instanceof ApiError) {
      for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
      return c.json({ message: err.message, code: err.code, requestId }, err.status as ContentfulStatusCode);
    }
    if (err instanceof HTTPException && err.status < 500) {
      return c.json({ message: err.message || "Bad request", code: "bad_request", requestId }, err.status);
    }
    if (isDatabaseUnavailable(err)) {
      // The control plane's own database is restarting or unreachable: transient, and requests
      // recover on their own once it is back (the pool reconnects).
      (c.get("logger") ?? deps.logger).warn("database unavailable", { err });
      c.header("Retry-After", String(DATABASE_RETRY_AFTER_SECONDS));
      return c.json(
        {
          message:
            "The control plane's database is unavailable (restarting or unreachable); try again in a few seconds",
          code: "unavailable",
          requestId,
        },
        503,
      );
    }
    (c.get("logger") ?? deps.logger).error("unhandled error", { err });
    return c.json({ message: "Internal server error", code: "internal", requestId }, 500);
  });

  return app;
}
