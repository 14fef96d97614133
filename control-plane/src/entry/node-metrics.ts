import { count } from "drizzle-orm";
import client from "prom-client";
import type { DatabaseHandle } from "../db/index.js";
import { projects } from "../db/schema.js";
import type { Metrics } from "../metrics.js";

/** prom-client backed metrics for the Node entry: HTTP, database pool, projects by status. */
export function createNodeMetrics(database: DatabaseHandle): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "supamanager_" });

  const requests = new client.Counter({
    name: "supamanager_http_requests_total",
    help: "HTTP requests by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: "supamanager_http_request_duration_seconds",
    help: "HTTP request latency by method and route pattern",
    labelNames: ["method", "route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new client.Gauge({
    name: "supamanager_db_pool_connections",
    help: "Database pool connections by state (postgres driver only)",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      const stats = database.poolStats?.();
      if (!stats) return;
      this.set({ state: "total" }, stats.total);
      this.set({ state: "idle" }, stats.idle);
      this.set({ state: "waiting" }, stats.waiting);
    },
  });
  new client.Gauge({
    name: "supamanager_projects",
    help: "Projects by status",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      const rows = await database.db
        .select({ status: projects.status, n: count() })
        .from(projects)
        .groupBy(projects.status);
      this.reset();
      for (const r of rows) this.set({ status: r.status }, r.n);
    },
  });

  return {
    observeRequest({ method, route, status }, seconds) {
      requests.inc({ method, route, status: String(status) });
      latency.observe({ method, route }, seconds);
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
