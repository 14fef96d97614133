import { readdirSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS_FOLDER, urlForDatabase, withAdminClient } from "../support/pg.js";
import { cleanupTmpDirs, ensureBuilt, freshDataDir, killAll, startEntry } from "../support/process.js";
import { call, login, profile, signup, uniqueEmail } from "./http-client.js";

/** The built Node entry on an external PostgreSQL database (DATABASE_URL). */

const created: string[] = [];

/** A new EMPTY database, so the entry itself must run every migration. */
async function emptyDatabase(): Promise<string> {
  const name = `supamanager_t_${Date.now().toString(36)}_e${Math.random().toString(36).slice(2, 8)}`;
  await withAdminClient((c) => c.query(`create database "${name}"`));
  created.push(name);
  return name;
}

async function appliedMigrations(name: string): Promise<number> {
  const client = new pg.Client({ connectionString: urlForDatabase(name) });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>("select count(*) as n from drizzle.__drizzle_migrations");
    return Number(rows[0]?.n);
  } finally {
    await client.end();
  }
}

const migrationCount = readdirSync(MIGRATIONS_FOLDER).filter((f) => f.endsWith(".sql")).length;

const PRODUCTION_SECRETS = {
  NODE_ENV: "production",
  SUPAMANAGER_JWT_SECRET: "entry-test-jwt-secret-0123456789abcdef0123",
  SUPAMANAGER_ENCRYPTION_KEY: "0f".repeat(32),
  SUPAMANAGER_RELEASE: "local",
};

beforeAll(() => ensureBuilt(), 180_000);
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  cleanupTmpDirs();
  for (const name of created) await withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`));
});

describe("external PostgreSQL", () => {
  it("starts in production with both secrets set, migrating an empty database", { timeout: 60_000 }, async () => {
    const db = await emptyDatabase();
    const dataDir = freshDataDir();
    const cp = await startEntry({
      ...PRODUCTION_SECRETS,
      DATABASE_URL: urlForDatabase(db),
      SUPAMANAGER_DATA_DIR: dataDir,
    });
    expect(cp.stdout.some((l) => l.includes('"database":"postgres"'))).toBe(true);
    expect((await call(cp.url, "/ready")).status).toBe(200);
    expect(await appliedMigrations(db)).toBe(migrationCount);

    const email = uniqueEmail("prod");
    await signup(cp.url, email);
    expect((await profile(cp.url, await login(cp.url, email))).primary_email).toBe(email);
    expect(await cp.stop()).toEqual({ code: 0, signal: null });
    // Secrets came from the environment: nothing was written to the data directory.
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it("two processes started at once on one empty database both come up", { timeout: 90_000 }, async () => {
    const db = await emptyDatabase();
    const env = { ...PRODUCTION_SECRETS, DATABASE_URL: urlForDatabase(db) };
    const [a, b] = await Promise.all([
      startEntry({ ...env, SUPAMANAGER_DATA_DIR: freshDataDir() }),
      startEntry({ ...env, SUPAMANAGER_DATA_DIR: freshDataDir() }),
    ]);
    expect(a.url).not.toBe(b.url);
    for (const p of [a, b]) {
      const res = await call(p.url, "/ready");
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ready" });
    }
    // The advisory lock let one migrate; the other found nothing left to do.
    expect(await appliedMigrations(db)).toBe(migrationCount);
    // Both serve the same data: an account made through one signs in through the other.
    const email = uniqueEmail("pair");
    await signup(a.url, email);
    expect((await profile(b.url, await login(b.url, email))).primary_email).toBe(email);
    const exits = await Promise.all([a.stop(), b.stop()]);
    expect(exits).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  });
});

/**
 * A TCP relay to PostgreSQL that can go down like a restarting database: `down()` drops every
 * connection and refuses new ones; `up()` accepts again on the same port.
 */
async function restartableRelay(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = createConnection(target);
        for (const sock of [client, upstream]) {
          sockets.add(sock);
          sock.on("close", () => sockets.delete(sock));
          sock.on("error", () => sock.destroy());
        }
        client.pipe(upstream).pipe(client);
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
      });
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        const addr = s.address();
        port = typeof addr === "object" && addr ? addr.port : 0;
        server = s;
        resolve();
      });
    });
  await listen();
  return {
    port: () => port,
    async down() {
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = null;
    },
    up: listen,
    async close() {
      await this.down();
    },
  };
}

describe("while the control plane's database restarts", () => {
  it("requests answer 503 with Retry-After, then recover on their own", { timeout: 90_000 }, async () => {
    const db = await emptyDatabase();
    const target = new URL(urlForDatabase(db));
    const relay = await restartableRelay({ host: target.hostname, port: Number(target.port || 5432) });
    try {
      const viaRelay = new URL(target);
      viaRelay.hostname = "127.0.0.1";
      viaRelay.port = String(relay.port());
      const cp = await startEntry({
        ...PRODUCTION_SECRETS,
        DATABASE_URL: viaRelay.toString(),
        SUPAMANAGER_DATA_DIR: freshDataDir(),
      });
      const email = uniqueEmail("restart");
      await signup(cp.url, email);
      const token = await login(cp.url, email);
      expect((await call(cp.url, "/platform/profile", { token })).status).toBe(200);

      await relay.down();
      const during = await call(cp.url, "/platform/profile", { token });
      expect(during.status, await during.clone().text()).toBe(503);
      expect(Number(during.headers.get("retry-after"))).toBeGreaterThan(0);
      const body = (await during.json()) as { code: string; message: string };
      expect(body.code).toBe("unavailable");
      expect(body.message).toMatch(/database is unavailable/);
      // A login too (its rate limiter reads the database first).
      const loginDuring = await call(cp.url, "/auth/v1/token?grant_type=password", {
        method: "POST",
        json: { email, password: "correct horse battery staple" },
      });
      expect(loginDuring.status).toBe(503);

      await relay.up();
      let after = await call(cp.url, "/platform/profile", { token });
      for (let i = 0; i < 40 && after.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 250));
        after = await call(cp.url, "/platform/profile", { token });
      }
      expect(after.status).toBe(200);
      // No log line carried a stack of 500s or the session's query parameters.
      const lines = cp.stdout.join("\n");
      expect(lines).not.toMatch(/"status":500/);
      expect(lines).not.toMatch(/params: (?!\[omitted\])/);
    } finally {
      await relay.close();
    }
  });
});
