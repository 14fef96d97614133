import { scrypt } from "node:crypto";
import { readFileSync } from "node:fs";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";
import { createApp } from "../app.js";
import { buildConfig, ConfigError, type Env } from "../config.js";
import { SecretBox } from "../crypto/aes.js";
import { AccessTokens } from "../crypto/jwt.js";
import { PasswordHasher, type ScryptFn } from "../crypto/password.js";
import type { DatabaseHandle } from "../db/index.js";
import { defaultMigrationsFolder } from "../db/migrations.js";
import { migratePglite, openPglite } from "../db/pglite.js";
import { migratePostgres, openPostgres } from "../db/postgres.js";
import { type AppDeps, type Clock, systemClock } from "../deps.js";
import { createLogger, type Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { buildReleaseCatalog, ReleaseConfigError } from "../releases/catalog.js";
import { ensureAdmin } from "../services/accounts/signup.js";
import { LocalHub } from "../services/fleet/hub.js";
import { LivenessWrites } from "../services/fleet/liveness-writes.js";
import { ReplicatedHub } from "../services/fleet/replicated-hub.js";
import { rerenderForDomainChangeOnce } from "../services/projects/url-domains.js";
import { nodeAgentUpgrade } from "./agent-socket.js";
import { createNodeMetrics } from "./node-metrics.js";
import { resolveSecrets } from "./secrets-file.js";
import { TunnelRelay } from "./tunnel.js";

/** Node's native scrypt: same function as the portable one, several times faster. */
export const nativeScrypt: ScryptFn = (password, salt, { ln, r, p }, dkLen) =>
  new Promise((resolve, reject) =>
    scrypt(password, salt, dkLen, { N: 2 ** ln, r, p, maxmem: 2 ** (ln + 8) * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    ),
  );

export interface BootOptions {
  logger?: Logger;
  clock?: Clock;
  metrics?: (db: DatabaseHandle) => Metrics;
  passwords?: PasswordHasher;
  migrationsFolder?: string;
}

/**
 * Everything the Node entry does before listening: config, secrets, database, migrations,
 * the configured admin. Tests and benchmarks call it too, so they run what production runs.
 */
export async function bootstrap(env: Env, opts: BootOptions = {}) {
  const logger = opts.logger ?? createLogger(env.SUPAMANAGER_LOG_LEVEL);
  const { secrets, generatedFile } = resolveSecrets(env);
  if (generatedFile) logger.info("using secrets from the data directory", { file: generatedFile });
  const config = buildConfig(env, secrets);
  const migrationsFolder = opts.migrationsFolder ?? defaultMigrationsFolder();

  let database: DatabaseHandle;
  // Where start-up time goes (bench/first-start.ts reads the "database ready" line).
  const ms = (since: number) => Math.round(performance.now() - since);
  let openMs = 0;
  let migrateMs = 0;
  if (config.databaseUrl) {
    const m0 = performance.now();
    await migratePostgres(config.databaseUrl, migrationsFolder);
    migrateMs = ms(m0);
    database = openPostgres(config.databaseUrl, config.databasePoolMax);
  } else {
    const o0 = performance.now();
    database = await openPglite(config.dataDir);
    openMs = ms(o0);
    const m0 = performance.now();
    await migratePglite(database, migrationsFolder);
    migrateMs = ms(m0);
  }
  logger.info("database ready", { driver: database.driver, open_ms: openMs, migrate_ms: migrateMs });

  const releases = loadReleases(env);
  const clock = opts.clock ?? systemClock;
  const localHub = new LocalHub();
  // On PostgreSQL several replicas may share the database (ADR 0014): kicks, disconnects and RPCs
  // for hosts held by another replica go through LISTEN/NOTIFY. Harmless with one replica; PGlite
  // is single-process, so there the process's own connections are the whole fleet.
  const replicatedHub = config.databaseUrl
    ? new ReplicatedHub(localHub, { database, clock, config, logger }, { url: config.databaseUrl })
    : undefined;
  const hub = replicatedHub ?? localHub;
  // Heartbeats' row writes share one statement per second (ADR 0048); PGlite serves one
  // statement at a time in this process, so there a batch helps as much.
  localHub.livenessWrites = new LivenessWrites({ database, logger });
  const deps: AppDeps = {
    config,
    database,
    logger,
    metrics: (opts.metrics ?? createNodeMetrics)(database),
    secretBox: await SecretBox.create(config.encryptionKey, config.encryptionKeysOld).catch((err: unknown) => {
      throw new ConfigError(
        `SUPAMANAGER_ENCRYPTION_KEY / SUPAMANAGER_ENCRYPTION_KEYS_OLD: ${err instanceof Error ? err.message : String(err)}`,
      );
    }),
    passwords: opts.passwords ?? new PasswordHasher(nativeScrypt),
    accessTokens: new AccessTokens(config.jwtSecret, config.accessTokenTtlSeconds, () => clock.now()),
    clock,
    hub,
    releases,
    agentUpgrade: nodeAgentUpgrade(hub),
    remoteAddress: (c: Context) => {
      try {
        return getConnInfo(c).remote.address;
      } catch {
        return undefined; // not served by @hono/node-server (e.g. app.request in tests)
      }
    },
  };
  // The tunnel (ADR 0035) where a tunnel domain is configured: hosts in tunnel mode dial it.
  // On PostgreSQL another replica may hold a host's data connection: requests are forwarded there.
  const tunnel =
    config.projects.tunnelDomain !== undefined
      ? new TunnelRelay(deps, { replicas: replicatedHub !== undefined })
      : undefined;
  if (tunnel) deps.tunnelUpgrade = tunnel.upgrade;
  const admin = await ensureAdmin(deps);
  if (admin === "created") logger.info("created the configured admin account", { email: config.admin?.email });
  await replicatedHub?.start();
  // A changed projects or tunnel domain re-renders the projects' URLs (services/projects/url-domains.ts).
  await rerenderForDomainChangeOnce(deps);
  return { deps, app: createApp(deps), hubs: { local: localHub, replicated: replicatedHub }, tunnel };
}

function readJson(variable: string, path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(`${variable}: ${path} is not valid JSON`);
  }
}

/** The release catalog: built-in `local`, its local image tags, and SUPAMANAGER_RELEASES_FILE. */
export function loadReleases(env: Env) {
  try {
    return buildReleaseCatalog({
      defaultRelease: env.SUPAMANAGER_RELEASE,
      ...(env.SUPAMANAGER_RELEASES_FILE
        ? { releasesFile: readJson("SUPAMANAGER_RELEASES_FILE", env.SUPAMANAGER_RELEASES_FILE) }
        : {}),
      ...(env.SUPAMANAGER_LOCAL_IMAGES_FILE
        ? { localImages: readJson("SUPAMANAGER_LOCAL_IMAGES_FILE", env.SUPAMANAGER_LOCAL_IMAGES_FILE) }
        : {}),
    });
  } catch (err) {
    if (err instanceof ReleaseConfigError) throw new ConfigError(err.message);
    throw err;
  }
}
