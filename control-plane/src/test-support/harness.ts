import { inject } from "vitest";
import { freshDatabase } from "../../../test/support/pg.js";
import { createApp } from "../app.js";
import { buildConfig, type Config, parseEnv } from "../config.js";
import { SecretBox } from "../crypto/aes.js";
import { AccessTokens } from "../crypto/jwt.js";
import { PasswordHasher } from "../crypto/password.js";
import type { DatabaseHandle } from "../db/index.js";
import { openPostgres } from "../db/postgres.js";
import type { AppDeps } from "../deps.js";
import { nodeAgentUpgrade } from "../entry/agent-socket.js";
import { loadReleases, nativeScrypt } from "../entry/bootstrap.js";
import { createLogger } from "../logger.js";
import { noopMetrics } from "../metrics.js";
import { LocalHub } from "../services/fleet/hub.js";
import { ReplicatedHub, type ReplicatedHubOptions } from "../services/fleet/replicated-hub.js";

/** A clock tests can move. */
export class ManualClock {
  constructor(public ms = Date.UTC(2026, 10, 25, 12, 0, 0)) {}
  now = () => this.ms;
  advance(seconds: number) {
    this.ms += seconds * 1000;
  }
}

export const TEST_JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789";
export const TEST_ENCRYPTION_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

export interface TestApp {
  app: ReturnType<typeof createApp>;
  deps: AppDeps;
  /** The process-local hub behind deps.hub (sessions register here). */
  hub: LocalHub;
  /** deps.hub when the app is one of several replicas on one database (createReplicaTestApps). */
  replicated?: ReplicatedHub;
  /** The database's URL (replicas only; for tests that open their own connection to it). */
  databaseUrl?: string;
  clock: ManualClock;
  /** Every log line written during the test, for assertions (e.g. no secret is ever logged). */
  logs: string[];
  request: (path: string, init?: RequestInit & { token?: string; json?: unknown; ip?: string }) => Promise<Response>;
  close: () => Promise<void>;
}

/**
 * A control plane on a fresh PostgreSQL database cloned from the migrated template.
 * Cheap scrypt parameters keep the suite fast; the hashing itself is the production code.
 */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const fresh = await freshDatabase(inject("templateDatabase"));
  const database = openPostgres(fresh.url, 5);
  return buildTestApp(database, env, async () => {
    await database.close();
    await fresh.drop();
  });
}

/**
 * `count` control planes sharing ONE fresh database, each with its own pool and a ReplicatedHub
 * (as bootstrap builds it on PostgreSQL): replicas of one deployment, for ADR 0014's tests.
 * The database is dropped when the last of them is closed.
 */
export async function createReplicaTestApps(
  count: number,
  env: Record<string, string> = {},
  hubOptions: Omit<ReplicatedHubOptions, "url"> = {},
): Promise<TestApp[]> {
  const fresh = await freshDatabase(inject("templateDatabase"));
  let open = count;
  const apps: TestApp[] = [];
  for (let i = 0; i < count; i++) {
    const database = openPostgres(fresh.url, 5);
    apps.push(
      await buildTestApp(
        database,
        env,
        async () => {
          await database.close();
          if (--open === 0) await fresh.drop();
        },
        { replicated: { ...hubOptions, url: fresh.url } },
      ),
    );
  }
  return apps;
}

export async function buildTestApp(
  database: DatabaseHandle,
  env: Record<string, string>,
  onClose: () => Promise<void>,
  opts: { replicated?: ReplicatedHubOptions } = {},
): Promise<TestApp> {
  const clock = new ManualClock();
  const logs: string[] = [];
  const parsed = parseEnv({
    NODE_ENV: "test",
    SUPAMANAGER_CORS_ORIGINS: "http://studio.test",
    // Tests run the locally built release unless they name another (the default pulls images).
    SUPAMANAGER_RELEASE: "local",
    ...env,
  });
  const config: Config = buildConfig(parsed, { jwtSecret: TEST_JWT_SECRET, encryptionKey: TEST_ENCRYPTION_KEY });
  const hub = new LocalHub();
  const logger = createLogger("debug", (line) => logs.push(line));
  const replicated = opts.replicated
    ? new ReplicatedHub(hub, { database, clock, config, logger }, opts.replicated)
    : undefined;
  const deps: AppDeps = {
    config,
    database,
    logger,
    metrics: noopMetrics,
    secretBox: await SecretBox.create(config.encryptionKey),
    passwords: new PasswordHasher(nativeScrypt, { ln: 10, r: 8, p: 1 }),
    accessTokens: new AccessTokens(config.jwtSecret, config.accessTokenTtlSeconds, () => clock.now()),
    clock,
    hub: replicated ?? hub,
    releases: loadReleases(parsed),
    agentUpgrade: nodeAgentUpgrade(replicated ?? hub),
    remoteAddress: (c) => c.req.header("x-test-remote-address") ?? "127.0.0.1",
  };
  const app = createApp(deps);
  const request: TestApp["request"] = (path, init = {}) => {
    const { token, json, ip, headers, ...rest } = init;
    const h = new Headers(headers);
    if (token) h.set("authorization", `Bearer ${token}`);
    if (ip) h.set("x-test-remote-address", ip);
    if (json !== undefined) h.set("content-type", "application/json");
    return Promise.resolve(
      app.request(path, { ...rest, headers: h, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) }),
    );
  };
  await replicated?.start();
  const close = async () => {
    await replicated?.stop();
    await onClose();
  };
  return {
    app,
    deps,
    hub,
    ...(replicated && opts.replicated ? { replicated, databaseUrl: opts.replicated.url } : {}),
    clock,
    logs,
    request,
    close,
  };
}
