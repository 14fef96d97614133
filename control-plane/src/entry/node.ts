import type { AddressInfo } from "node:net";
import { ConfigError, parseEnv } from "../config.js";
import { DataDirLockedError } from "../db/pglite.js";
import { createLogger } from "../logger.js";
import { CLOSE, LocalHub } from "../services/fleet/hub.js";
import { createNodeServer } from "./agent-socket.js";
import { bootstrap } from "./bootstrap.js";

/** `npm start`: the control plane on Node. */
async function main() {
  const env = parseEnv(process.env);
  const logger = createLogger(env.SUPAMANAGER_LOG_LEVEL);
  const { app, deps } = await bootstrap(env, { logger });
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

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    // Agents reconnect (with backoff) to whichever control plane comes back.
    if (deps.hub instanceof LocalHub) deps.hub.closeAll(CLOSE.shuttingDown, "control plane shutting down");
    server.close(async () => {
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
