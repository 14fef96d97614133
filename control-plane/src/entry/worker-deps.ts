import { scrypt } from "node:crypto";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { createApp } from "../app.js";
import { buildConfig, ConfigError, parseEnv } from "../config.js";
import { SecretBox } from "../crypto/aes.js";
import { AccessTokens } from "../crypto/jwt.js";
import { PasswordHasher, type ScryptFn } from "../crypto/password.js";
import { configureNeon, ScopedNeonDatabase } from "../db/neon.js";
import { type AppDeps, type AppEnv, systemClock } from "../deps.js";
import { createLogger } from "../logger.js";
import { noopMetrics } from "../metrics.js";
import { buildReleaseCatalog, ReleaseConfigError } from "../releases/catalog.js";
import { ensureAdmin } from "../services/accounts/signup.js";
import { DurableObjectHub, forwardAgentUpgrade } from "./worker-hub.js";
import type { DurableObjectNamespace } from "./workers-types.js";

/** The Worker's bindings: the HOSTS Durable Object namespace plus string variables and secrets. */
export interface WorkerEnv {
  HOSTS: DurableObjectNamespace;
  [name: string]: unknown;
}

/** Workers-only variables (everything else is the ordinary SUPAMANAGER_* configuration). */
const WorkerVars = z.object({
  /** `host:port/path` of a WebSocket-to-TCP proxy; `{host}`/`{port}` are the database's. Unset on Neon. */
  SUPAMANAGER_NEON_WS_PROXY: z.string().min(1).optional(),
  /** `true`: talk `ws://` to the proxy (local runs and tests only). */
  SUPAMANAGER_NEON_INSECURE: z.enum(["true", "false"]).optional(),
  /**
   * Least time between two liveness alarms of a host's object (seconds). Alarms are billed as
   * requests, so they do not follow every heartbeat; see HostObject.alarm and the deploy doc.
   */
  SUPAMANAGER_STALE_SWEEP_SECONDS: z.coerce.number().int().positive().default(300),
});

/**
 * Node's scrypt through the Workers runtime's `nodejs_compat` layer: workerd implements
 * `crypto.scrypt` natively (same output as the portable one, checked in test/edge), several times
 * faster than the pure-JS fallback and without blocking the isolate in JS for the whole hash.
 */
const workerdScrypt: ScryptFn = (password, salt, { ln, r, p }, dkLen) =>
  new Promise((resolve, reject) =>
    scrypt(password, salt, dkLen, { N: 2 ** ln, r, p, maxmem: 2 ** (ln + 8) * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    ),
  );

/** What one isolate builds once from its bindings and reuses for every request. */
export interface WorkerRuntime {
  deps: AppDeps;
  database: ScopedNeonDatabase;
  app: Hono<AppEnv>;
  /** SUPAMANAGER_STALE_SWEEP_SECONDS. */
  staleSweepSeconds: number;
  /** Creates the configured admin once per isolate (inside the first request's scope). */
  ensureAdminOnce(): Promise<void>;
}

/** The string bindings, as the environment the ordinary config parser reads. */
function stringBindings(env: WorkerEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === "string") out[k] = v;
  return out;
}

/**
 * Build the deps from the bindings. Secrets must be bindings (`wrangler secret put`): there is no
 * data directory to generate them into. Throws ConfigError naming the variable.
 */
export async function buildWorkerRuntime(env: WorkerEnv): Promise<WorkerRuntime> {
  const vars = stringBindings(env);
  const parsed = parseEnv(vars);
  const workerVars = WorkerVars.safeParse(vars);
  if (!workerVars.success) {
    const names = workerVars.error.issues.map((i) => i.path.join(".")).join(", ");
    throw new ConfigError(`Invalid configuration: ${names}`);
  }
  const missing = [
    ["DATABASE_URL", parsed.DATABASE_URL],
    ["SUPAMANAGER_JWT_SECRET", parsed.SUPAMANAGER_JWT_SECRET],
    ["SUPAMANAGER_ENCRYPTION_KEY", parsed.SUPAMANAGER_ENCRYPTION_KEY],
  ]
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length > 0) throw new ConfigError(`Missing configuration on Workers: ${missing.join(", ")}`);
  if (!env.HOSTS) throw new ConfigError("Missing the HOSTS Durable Object binding");

  const config = buildConfig(parsed, {
    jwtSecret: parsed.SUPAMANAGER_JWT_SECRET as string,
    encryptionKey: parsed.SUPAMANAGER_ENCRYPTION_KEY as string,
  });
  configureNeon({
    wsProxy: workerVars.data.SUPAMANAGER_NEON_WS_PROXY,
    insecure: workerVars.data.SUPAMANAGER_NEON_INSECURE === "true",
  });
  const database = new ScopedNeonDatabase(config.databaseUrl as string, Math.min(config.databasePoolMax, 5));
  let releases: AppDeps["releases"];
  try {
    // Built-in releases only: a Worker has no files to read a releases file from.
    releases = buildReleaseCatalog({ defaultRelease: parsed.SUPAMANAGER_RELEASE });
  } catch (err) {
    if (err instanceof ReleaseConfigError) throw new ConfigError(err.message);
    throw err;
  }
  const secretBox = await SecretBox.create(config.encryptionKey, config.encryptionKeysOld).catch((err: unknown) => {
    throw new ConfigError(
      `SUPAMANAGER_ENCRYPTION_KEY / SUPAMANAGER_ENCRYPTION_KEYS_OLD: ${err instanceof Error ? err.message : String(err)}`,
    );
  });
  const clock = systemClock;
  const logger = createLogger(config.logLevel);
  const hub = new DurableObjectHub(env.HOSTS, logger);
  const deps: AppDeps = {
    config,
    database,
    logger,
    metrics: noopMetrics,
    secretBox,
    passwords: new PasswordHasher(workerdScrypt),
    accessTokens: new AccessTokens(config.jwtSecret, config.accessTokenTtlSeconds, () => clock.now()),
    clock,
    hub,
    releases,
    agentUpgrade: forwardAgentUpgrade(env.HOSTS),
    // Cloudflare sets CF-Connecting-IP itself (a client cannot forge it through Cloudflare).
    remoteAddress: (c: Context) => c.req.header("cf-connecting-ip") ?? undefined,
  };
  let admin: Promise<void> | undefined;
  return {
    deps,
    database,
    app: createApp(deps),
    staleSweepSeconds: workerVars.data.SUPAMANAGER_STALE_SWEEP_SECONDS,
    ensureAdminOnce() {
      if (!config.admin) return Promise.resolve();
      admin ??= ensureAdmin(deps).then(
        (r) => {
          if (r === "created") deps.logger.info("created the configured admin account", { email: config.admin?.email });
        },
        (err: unknown) => {
          admin = undefined; // try again on the next request
          throw err;
        },
      );
      return admin;
    },
  };
}

const runtimes = new WeakMap<object, Promise<WorkerRuntime>>();

/** The isolate's runtime for these bindings (built on first use; a failed build is retried). */
export function workerRuntime(env: WorkerEnv): Promise<WorkerRuntime> {
  let rt = runtimes.get(env);
  if (!rt) {
    rt = buildWorkerRuntime(env);
    runtimes.set(env, rt);
    rt.catch(() => runtimes.delete(env));
  }
  return rt;
}
