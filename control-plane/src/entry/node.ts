import type { AddressInfo } from "node:net";
import { ConfigError, parseEnv } from "../config.js";
import { DataDirLockedError } from "../db/pglite.js";
import { createLogger } from "../logger.js";
import { CLOSE } from "../services/fleet/hub.js";
import { runMaintenance } from "../services/maintenance.js";
import { createNodeServer } from "./agent-socket.js";
import { bootstrap } from "./bootstrap.js";

/** `npm start`: the control plane on Node. */
async function main() {
  const env = parseEnv(process.env);
  const logger = createLogger(env.SUPAMANAGER_LOG_LEVEL);
  const { app, deps, hubs } = await bootstrap(env, { logger });
  const { server } = createNodeServer(app);
  // A deploy or restart makes every agent reconnect at once: a deep accept queue (the kernel caps
  // it at net.core.somaxconn) turns that storm into waiting instead of refused connections.
  server.listen({ port: env.PORT, host: env.HOST, backlog: 4096 }, () => {
    const info = server.address() as AddressInfo;
    const url =
      env.SUPAMANAGER_PUBLIC_URL ??
      `http://${info.address.includes(":") ? `[${info.address}]` : info.address}:${info.port}`;
    logger.info("SupaManager control plane listening", { url, database: deps.database.driver });
    // A plain line for people reading the terminal.
    process.stderr.write(`\nSupaManager is running at ${url}\n\n`);
  });

  // Backup schedules, retention, stuck backups, expired job leases, abandoned RPC rows (safe
  // on several replicas at once). One run at a time: a slow tick is skipped, not stacked.
  let maintaining = false;
  const maintenance = setInterval(() => {
    if (maintaining) return;
    maintaining = true;
    runMaintenance(deps)
      .catch((err: unknown) => logger.error("maintenance failed", { err }))
      .finally(() => {
        maintaining = false;
      });
  }, env.SUPAMANAGER_BACKUP_TICK_SECONDS * 1000);
  maintenance.unref();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    clearInterval(maintenance);
    // Agents reconnect (with backoff) to whichever control plane comes back.
    hubs.local.closeAll(CLOSE.shuttingDown, "control plane shutting down");
    server.close(async () => {
      await hubs.replicated?.stop();
      await deps.database.close();
      process.exit(0);
    });
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof DataDirLockedError) {
    process.stderr.write(`${err.message}\n`);
  } else {
    process.stderr.write(
      `SupaManager failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
  process.exit(1);
});
