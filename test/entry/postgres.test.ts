import { readdirSync } from "node:fs";
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
