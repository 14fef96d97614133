import { ConfigError } from "../config.js";
import { createLogger } from "../logger.js";
import { runMaintenance } from "../services/maintenance.js";
import { HostObject } from "./host-object.js";
import { type WorkerEnv, workerRuntime } from "./worker-deps.js";
import type { ExecutionContext } from "./workers-types.js";

/**
 * The control plane on Cloudflare Workers: the same Hono app as on Node (createApp), with deps
 * built from the Worker's bindings (entry/worker-deps.ts) and one Durable Object per host for
 * the agent sockets (entry/host-object.ts). Migrations are a deploy step (scripts/migrate.mjs),
 * never run per request. See docs/deploy-cloudflare.md and docs/adr/0016-cloudflare-workers.md.
 */
export { HostObject };

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
    let rt: Awaited<ReturnType<typeof workerRuntime>>;
    try {
      rt = await workerRuntime(env);
    } catch (err) {
      // Name the problem in the log (variable names only, never values) and not to the caller.
      const message = err instanceof ConfigError ? err.message : "failed to build the control plane";
      createLogger("error").error("worker misconfigured", { message });
      return Response.json(
        { message: "The control plane is misconfigured; see the Worker's logs", code: "internal" },
        { status: 500 },
      );
    }
    // A Neon pool for this request only (Workers forbid sharing sockets between requests); it
    // is closed once the response is out.
    const { result, done } = await rt.database.scoped(async () => {
      await rt.ensureAdminOnce().catch((err: unknown) => {
        rt.deps.logger.error("could not create the configured admin account", { err });
      });
      return rt.app.fetch(request, env, ctx);
    });
    ctx.waitUntil(done);
    return result;
  },

  /**
   * The cron trigger in wrangler.toml (every minute): backup schedules, retention, stuck
   * backups, expired job leases and abandoned RPC rows — what Node runs on a timer.
   */
  async scheduled(_controller: unknown, env: WorkerEnv, ctx: ExecutionContext): Promise<void> {
    const rt = await workerRuntime(env);
    const { result, done } = await rt.database.scoped(() => runMaintenance(rt.deps));
    ctx.waitUntil(done);
    rt.deps.logger.info("maintenance", { ...result });
  },
};
