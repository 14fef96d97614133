import { AsyncLocalStorage } from "node:async_hooks";
import { neonConfig, Pool } from "@neondatabase/serverless";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-serverless";
import type { Database, DatabaseHandle } from "./index.js";
import * as schema from "./schema.js";

/**
 * How the Neon driver reaches PostgreSQL. On Neon itself nothing needs setting (the driver
 * derives `wss://<host>/v2`); against another PostgreSQL it goes through a WebSocket-to-TCP
 * proxy (tests, local runs): `wsProxy` is `host:port/path` and `{host}`/`{port}` are replaced
 * by the database's, and `insecure` uses `ws://` instead of `wss://`.
 */
export interface NeonOptions {
  wsProxy?: string | undefined;
  insecure?: boolean | undefined;
  /** Connections one scope may open at once. */
  poolMax?: number | undefined;
}

/** Apply the driver-wide settings (module state of the driver: call once per isolate). */
export function configureNeon(opts: NeonOptions): void {
  const proxy = opts.wsProxy;
  if (proxy) {
    neonConfig.wsProxy = (host, port) => proxy.replaceAll("{host}", host).replaceAll("{port}", String(port));
  }
  if (opts.insecure) {
    neonConfig.useSecureWebSocket = false;
    // Pipelining the startup with the password only works with cleartext password logins; a
    // SCRAM login (any PostgreSQL that is not Neon) fails with it.
    neonConfig.pipelineConnect = false;
  }
}

interface Scope {
  pool: Pool | undefined;
  db: Database | undefined;
}

/**
 * A DatabaseHandle for runtimes that cannot share I/O objects between requests (Workers,
 * Durable Objects): `db` is the drizzle instance of the CURRENT scope, whose Pool is opened on
 * first use and closed when the scope ends. Everything the app does inside `scoped(fn)` — also
 * promise continuations started there — sees the same pool, so transactions behave as on Node.
 */
export class ScopedNeonDatabase implements DatabaseHandle {
  readonly driver = "neon" as const;
  readonly #als = new AsyncLocalStorage<Scope>();
  /** Pools opened so far (measured by the benchmark and the tests). */
  poolsOpened = 0;

  constructor(
    private readonly url: string,
    private readonly poolMax = 5,
  ) {}

  get db(): Database {
    const scope = this.#als.getStore();
    if (!scope) throw new Error("database used outside of a request scope");
    if (!scope.db) {
      const pool = new Pool({ connectionString: this.url, max: this.poolMax });
      // A connection dropping while idle must not become an unhandled error of the isolate.
      pool.on("error", () => {});
      scope.pool = pool;
      scope.db = drizzle({ client: pool, schema }) as unknown as Database;
      this.poolsOpened += 1;
    }
    return scope.db;
  }

  /**
   * Run `fn` in a fresh scope. Resolves with fn's result and `done`, which closes the scope's
   * pool (hand it to ctx.waitUntil, or await it).
   */
  async scoped<T>(fn: () => Promise<T>): Promise<{ result: T; done: Promise<void> }> {
    const scope: Scope = { pool: undefined, db: undefined };
    const end = () => (scope.pool ? scope.pool.end().catch(() => {}) : Promise.resolve());
    try {
      const result = await this.#als.run(scope, fn);
      return { result, done: end() };
    } catch (err) {
      await end();
      throw err;
    }
  }

  async ping(): Promise<void> {
    await this.db.execute(sql`select 1`);
  }

  async close(): Promise<void> {
    // Pools belong to scopes and are closed with them.
  }
}
