import type { AddressInfo } from "node:net";
import { ConfigError, parseEnv } from "../config.js";
import { DataDirLockedError } from "../db/pglite.js";
import { createLogger } from "../logger.js";
import { CLOSE } from "../services/fleet/hub.js";
import { runMaintenance } from "../services/maintenance.js";
import { createNodeServer } from "./agent-socket.js";
import { bootstrap } from "./bootstrap.js";
import { type LocalHost, startLocalHost } from "./local-host.js";

/** `npm start`: the control plane on Node. */
async function main() {
  const env = parseEnv(process.env);
  const logger = createLogger(env.SUPAMANAGER_LOG_LEVEL);
  const { app, deps, hubs, tunnel } = await bootstrap(env, { logger });
  const { server } = createNodeServer(app, { tunnel });
  const say = (text: string) => process.stderr.write(`${text}\n`);
  let localHost: Promise<LocalHost | null> = Promise.resolve(null);
  // A deploy or restart makes every agent reconnect at once: a deep accept queue (the kernel caps
  // it at net.core.somaxconn) turns that storm into waiting instead of refused connections.
  server.listen({ port: env.PORT, host: env.HOST, backlog: 4096 }, () => {
    const info = server.address() as AddressInfo;
    tunnel?.listening(info);
    const url =
      env.SUPAMANAGER_PUBLIC_URL ??
      `http://${info.address.includes(":") ? `[${info.address}]` : info.address}:${info.port}`;
    logger.info("SupaManager control plane listening", { url, database: deps.database.driver });
    // Plain lines for people reading the terminal.
    say(`\nSupaManager is running at ${url}\n\n${nextSteps(url)}\n`);
    localHost = startLocalHost({ env, deps, logger, url: loopbackUrl(info), say }).catch((err: unknown) => {
      logger.error("local host failed to start", { err });
      say(`The local host could not be started: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    });
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
    // The local host's agent first, so it does not reconnect to the server that is closing.
    const agentStopped = localHost.then((h) => h?.stop());
    // Agents reconnect (with backoff) to whichever control plane comes back.
    hubs.local.closeAll(CLOSE.shuttingDown, "control plane shutting down");
    tunnel?.closeAll();
    server.close(async () => {
      await agentStopped;
      // Heartbeats still gathered for the next statement, and the closed connections' last beats.
      await hubs.local.livenessWrites?.flush().catch(() => {});
      await hubs.replicated?.stop();
      await deps.database.close();
      process.exit(0);
    });
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** Where the local host's agent dials this server: loopback when listening on every interface. */
function loopbackUrl(info: AddressInfo): string {
  const host =
    info.address === "0.0.0.0"
      ? "127.0.0.1"
      : info.address === "::"
        ? "[::1]"
        : info.address.includes(":")
          ? `[${info.address}]`
          : info.address;
  return `http://${host}:${info.port}`;
}

/** What to do next, printed under the URL on every start. */
function nextSteps(url: string): string {
  return [
    "Next steps (README.md walks through all of them):",
    "  1. Create the first account; it becomes the instance admin (the CLI reads the password from",
    "     $SUPAMANAGER_PASSWORD, so it stays out of your shell history):",
    `       export SUPAMANAGER_PASSWORD='choose a long password'`,
    `       npx supamanager signup --url ${url} --email you@example.com`,
    "  2. Log in with the operator CLI:",
    `       npx supamanager login --url ${url} --email you@example.com`,
    `  3. Open Supabase Studio against it: docs/studio.md (Studio's platform API URL: ${url}/platform)`,
    "  4. Create an organization and a project: npx supamanager orgs create --help",
  ].join("\n");
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
