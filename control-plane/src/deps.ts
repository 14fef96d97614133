import type { Context } from "hono";
import type { Config } from "./config.js";
import type { SecretBox } from "./crypto/aes.js";
import type { AccessTokens } from "./crypto/jwt.js";
import type { PasswordHasher } from "./crypto/password.js";
import type { Database, DatabaseHandle } from "./db/index.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import type { ReleaseCatalog } from "./releases/catalog.js";
import type { Hub } from "./services/fleet/hub.js";

/** Milliseconds since the epoch; injectable so tests can move time. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** Everything the app needs from the outside world, built by an entry file. */
export interface AppDeps {
  config: Config;
  database: DatabaseHandle;
  logger: Logger;
  metrics: Metrics;
  secretBox: SecretBox;
  passwords: PasswordHasher;
  accessTokens: AccessTokens;
  clock: Clock;
  /** Connected agents of this process; `kick` sends pending applies at once. */
  hub: Hub;
  /** Releases (manifests) projects can run; the default one for new projects. */
  releases: ReleaseCatalog;
  /**
   * Turns an authenticated `GET /agent/v1/connect` into a WebSocket for `hostId`, where the
   * runtime can (Node: entry/agent-socket.ts). Absent → the endpoint answers 501.
   */
  agentUpgrade?: (c: Context<AppEnv>, hostId: string) => Response | Promise<Response>;
  /**
   * Turns an authenticated `GET /agent/v1/tunnel` into the host's tunnel data connection (Node:
   * entry/tunnel.ts, ADR 0035). Absent → the endpoint answers 501 and welcome offers no tunnel.
   */
  tunnelUpgrade?: (c: Context<AppEnv>, hostId: string) => Response | Promise<Response>;
  /** The TCP peer address of a request, where the runtime knows it. */
  remoteAddress?: (c: Context) => string | undefined;
}

/** The signed-in account behind a request. */
export interface Actor {
  userId: string;
  email: string;
  sessionId: string;
  isInstanceAdmin: boolean;
}

/** Facts about the request that audit rows record. */
export interface RequestMeta {
  requestId: string;
  ip: string | undefined;
  userAgent: string | undefined;
}

/** What every service function receives: the database (or a transaction) and the request's facts. */
export interface ServiceContext {
  db: Database;
  deps: AppDeps;
  meta: RequestMeta;
}

export interface AuthedContext extends ServiceContext {
  actor: Actor;
}

export type Variables = {
  deps: AppDeps;
  db: Database;
  logger: Logger;
  requestId: string;
  meta: RequestMeta;
  actor: Actor | undefined;
};

export type AppEnv = { Variables: Variables };
