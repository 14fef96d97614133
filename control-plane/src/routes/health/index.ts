import { Hono } from "hono";
import type { AppEnv } from "../../deps.js";
import { ApiError } from "../../errors.js";

export function healthRoutes() {
  const app = new Hono<AppEnv>();

  /** Liveness: the process is up. Never touches the database. */
  app.get("/health", (c) => c.json({ status: "ok" }));

  /** Readiness: the database answers. */
  app.get("/ready", async (c) => {
    try {
      await c.get("deps").database.ping();
    } catch (err) {
      c.get("logger").warn("readiness probe failed", { err });
      throw new ApiError("unavailable", "Database is not reachable");
    }
    return c.json({ status: "ready" });
  });

  /** Prometheus metrics, where the runtime keeps them (Node). */
  app.get("/metrics", async (c) => {
    const out = await c.get("deps").metrics.render();
    if (!out) throw new ApiError("not_found", "Metrics are not served on this runtime");
    return c.body(out.body, 200, { "Content-Type": out.contentType });
  });

  return app;
}
