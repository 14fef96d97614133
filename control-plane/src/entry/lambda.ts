import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ApiGatewayManagementApiClient,
  type ApiGatewayManagementApiClientConfig,
} from "@aws-sdk/client-apigatewaymanagementapi";
import type { Context, Hono } from "hono";
import { getConnInfo, handle, type LambdaContext, type LambdaEvent } from "hono/aws-lambda";
import { z } from "zod";
import { createApp } from "../app.js";
import { buildConfig, ConfigError, type Env, parseEnv } from "../config.js";
import { SecretBox } from "../crypto/aes.js";
import { AccessTokens } from "../crypto/jwt.js";
import { PasswordHasher } from "../crypto/password.js";
import type { DatabaseHandle } from "../db/index.js";
import { defaultMigrationsFolder } from "../db/migrations.js";
import { migratePostgres, openPostgres } from "../db/postgres.js";
import { type AppDeps, type AppEnv, type Clock, systemClock } from "../deps.js";
import { createLogger, type Logger } from "../logger.js";
import { noopMetrics } from "../metrics.js";
import { ensureAdmin } from "../services/accounts/signup.js";
import type { MaintenanceReport } from "../services/backups/index.js";
import {
  type AgentConnections,
  ApiGatewayConnections,
  ApiGatewayHub,
  LAMBDA_RPC_MAX_TIMEOUT_MS,
} from "../services/fleet/apigw-hub.js";
import { runMaintenance } from "../services/maintenance.js";
import { loadReleases, nativeScrypt } from "./bootstrap.js";
import { LambdaAgentChannel, type WebSocketResult } from "./lambda-agent.js";
import { resolveSecrets } from "./secrets-file.js";

/**
 * The control plane on AWS Lambda (docs/deploy-lambda.md, ADR 0017). One bundle, four handlers:
 *   handler        the HTTP API (API Gateway REST v1 or HTTP API v2 events) through hono/aws-lambda
 *   agentHandler   the agents' WebSocket API ($connect, $default, $disconnect)
 *   migrateHandler migrations, run once per deploy (never per request)
 *   sweepHandler   the periodic work (backup maintenance, expired job leases, abandoned RPC rows)
 * Dependencies are built once per container (cold start) and reused by every invocation.
 */

/** Lambda-only variables; everything else is the ordinary configuration (docs/configuration.md). */
const LambdaVars = z.object({
  /**
   * The WebSocket API's @connections endpoint, `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`
   * (or the custom domain's). Both functions post to agents through it.
   */
  SUPAMANAGER_AGENT_CONNECTIONS_URL: z.url({ protocol: /^https?$/ }),
  /** Set by Lambda itself. */
  AWS_REGION: z.string().min(1).default("us-east-1"),
  /** Where the SQL migrations are in the deployed bundle (default: the repository layout). */
  SUPAMANAGER_MIGRATIONS_DIR: z.string().min(1).optional(),
});

/** A few connections per container: each container serves one request at a time. */
export const LAMBDA_DEFAULT_POOL_MAX = 2;

export interface LambdaOptions {
  logger?: Logger;
  clock?: Clock;
  passwords?: PasswordHasher;
  /** Replaces the SDK client (tests point it at a stand-in with `endpoint` and static credentials). */
  connections?: AgentConnections;
  /** Extra SDK client settings (credentials in tests). */
  clientConfig?: Partial<ApiGatewayManagementApiClientConfig>;
  rpcPollMs?: number;
}

export interface LambdaRuntime {
  deps: AppDeps;
  app: Hono<AppEnv>;
  hub: ApiGatewayHub;
  /** The HTTP API. */
  http: ReturnType<typeof handle>;
  /** The WebSocket API's routes. */
  agent: (event: unknown) => Promise<WebSocketResult>;
  close(): Promise<void>;
}

function env(source: Record<string, string | undefined>): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ""));
}

function lambdaVars(source: Record<string, string | undefined>) {
  const parsed = LambdaVars.safeParse(env(source));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".") || "(env)"}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  return parsed.data;
}

function databaseUrl(parsed: Env): string {
  if (!parsed.DATABASE_URL) {
    throw new ConfigError(
      "DATABASE_URL must be set on Lambda: the embedded database (PGlite) keeps its data in a local directory, which Lambda does not keep",
    );
  }
  return parsed.DATABASE_URL;
}

/** Everything one Lambda container builds on cold start. Throws ConfigError naming what is wrong. */
export async function buildLambdaRuntime(
  source: Record<string, string | undefined>,
  opts: LambdaOptions = {},
): Promise<LambdaRuntime> {
  const parsed = parseEnv(source);
  const vars = lambdaVars(source);
  const url = databaseUrl(parsed);
  // There is no data directory to keep generated secrets in: both must be given, whatever NODE_ENV says.
  const { secrets } = resolveSecrets({ ...parsed, NODE_ENV: "production" });
  const config = buildConfig(parsed, secrets);
  const logger = opts.logger ?? createLogger(parsed.SUPAMANAGER_LOG_LEVEL);
  // SQL through the agent waits statement timeout + 10 s (services/pg-meta/query.ts); on Lambda the
  // wait is cut at LAMBDA_RPC_MAX_TIMEOUT_MS, so a longer statement would outlive its request.
  const sqlWaitMs = (config.sql.statementTimeoutSeconds + 10) * 1000;
  if (sqlWaitMs > LAMBDA_RPC_MAX_TIMEOUT_MS) {
    logger.warn("SQL statement timeout is longer than a request can wait on Lambda", {
      SUPAMANAGER_SQL_STATEMENT_TIMEOUT_SECONDS: config.sql.statementTimeoutSeconds,
      recommended: Math.floor(LAMBDA_RPC_MAX_TIMEOUT_MS / 1000) - 10,
    });
  }
  const releases = loadReleases(parsed);
  const secretBox = await SecretBox.create(config.encryptionKey, config.encryptionKeysOld).catch((err: unknown) => {
    throw new ConfigError(
      `SUPAMANAGER_ENCRYPTION_KEY / SUPAMANAGER_ENCRYPTION_KEYS_OLD: ${err instanceof Error ? err.message : String(err)}`,
    );
  });
  const poolMax = source.DATABASE_POOL_MAX ? parsed.DATABASE_POOL_MAX : LAMBDA_DEFAULT_POOL_MAX;
  const database: DatabaseHandle = openPostgres(url, poolMax);
  const connections =
    opts.connections ??
    new ApiGatewayConnections(
      new ApiGatewayManagementApiClient({
        endpoint: vars.SUPAMANAGER_AGENT_CONNECTIONS_URL,
        region: vars.AWS_REGION,
        ...opts.clientConfig,
      }),
    );
  const clock = opts.clock ?? systemClock;
  let deps: AppDeps | undefined;
  const hub = new ApiGatewayHub(() => deps as AppDeps, connections, { rpcPollMs: opts.rpcPollMs });
  deps = {
    config,
    database,
    logger,
    metrics: noopMetrics,
    secretBox,
    passwords: opts.passwords ?? new PasswordHasher(nativeScrypt),
    accessTokens: new AccessTokens(config.jwtSecret, config.accessTokenTtlSeconds, () => clock.now()),
    clock,
    hub,
    releases,
    // No agentUpgrade: agents connect to the WebSocket API, not to the HTTP API.
    remoteAddress: (c: Context) => {
      try {
        return getConnInfo(c).remote.address;
      } catch {
        return undefined;
      }
    },
  };
  try {
    const admin = await ensureAdmin(deps);
    if (admin === "created") logger.info("created the configured admin account", { email: config.admin?.email });
  } catch (err) {
    await database.close();
    throw err;
  }
  const app = createApp(deps);
  const channel = new LambdaAgentChannel(deps, connections);
  return {
    deps,
    app,
    hub,
    http: handle(app),
    agent: (event) => channel.handle(event),
    close: () => database.close(),
  };
}

/** `migrations/` next to the bundle (scripts/build-lambda.mjs puts it there); absent in the repository layout. */
function bundledMigrations(): string | undefined {
  const dir = fileURLToPath(new URL("./migrations", import.meta.url));
  return existsSync(join(dir, "meta", "_journal.json")) ? dir : undefined;
}

/** Apply pending migrations (the deploy step; see docs/deploy-lambda.md). */
export async function migrate(source: Record<string, string | undefined>): Promise<{ migrationsFolder: string }> {
  const parsed = parseEnv(source);
  const vars = LambdaVars.pick({ SUPAMANAGER_MIGRATIONS_DIR: true }).parse(env(source));
  const migrationsFolder = vars.SUPAMANAGER_MIGRATIONS_DIR ?? bundledMigrations() ?? defaultMigrationsFolder();
  await migratePostgres(databaseUrl(parsed), migrationsFolder);
  return { migrationsFolder };
}

/**
 * The periodic work Node does on a timer, for an EventBridge schedule (every minute): see
 * services/maintenance.ts (runtime-neutral, safe to overlap).
 */
export const sweep = (deps: AppDeps): Promise<MaintenanceReport> => runMaintenance(deps);

// ─── the handlers Lambda calls ─────────────────────────────────────────────────────────────────

let current: Promise<LambdaRuntime> | undefined;

/** The container's runtime, built on first use; a failed build is retried by the next invocation. */
function runtime(): Promise<LambdaRuntime> {
  current ??= buildLambdaRuntime(process.env).catch((err: unknown) => {
    current = undefined;
    throw err;
  });
  return current;
}

/** A configuration error goes to the function's log (CloudWatch), as one line without a stack. */
function reportStartFailure(err: unknown): void {
  const message =
    err instanceof ConfigError ? err.message : `start-up failed: ${err instanceof Error ? err.message : String(err)}`;
  process.stderr.write(`${JSON.stringify({ level: "error", msg: "SupaManager could not start", error: message })}\n`);
}

const unavailable = (status: number) => ({
  statusCode: status,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ message: "The control plane could not start; see its logs", code: "unavailable" }),
  isBase64Encoded: false,
});

/** The runtime, or null once the reason it could not start is logged (the caller answers 503). */
async function startedRuntime(): Promise<LambdaRuntime | null> {
  try {
    return await runtime();
  } catch (err) {
    reportStartFailure(err);
    return null;
  }
}

export async function handler(event: LambdaEvent, context?: LambdaContext) {
  const rt = await startedRuntime();
  return rt ? rt.http(event, context) : unavailable(503);
}

export async function agentHandler(event: unknown): Promise<WebSocketResult> {
  const rt = await startedRuntime();
  return rt ? rt.agent(event) : unavailable(503);
}

export async function migrateHandler(): Promise<{ ok: true; migrationsFolder: string }> {
  try {
    return { ok: true, ...(await migrate(process.env)) };
  } catch (err) {
    reportStartFailure(err);
    throw err;
  }
}

export async function sweepHandler(): Promise<{ ok: true } & MaintenanceReport> {
  return { ok: true, ...(await sweep((await runtime()).deps)) };
}
