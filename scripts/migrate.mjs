#!/usr/bin/env node
import { defaultMigrationsFolder } from "../control-plane/src/db/migrations.ts";
// Apply pending migrations to DATABASE_URL (PostgreSQL or Neon; use Neon's direct, non-pooled
// URL). The deploy step for runtimes that do not migrate when they start (Cloudflare Workers):
//   DATABASE_URL=postgres://… npm run migrate
// Safe to run concurrently and repeatedly: an advisory lock serialises runs, and applied
// migrations are skipped. Prints what it did; never prints the URL (it holds a password).
import { migratePostgres } from "../control-plane/src/db/postgres.ts";

const { DATABASE_URL: url } = process.env;
if (!url) {
  console.error("DATABASE_URL is not set (the PostgreSQL/Neon database to migrate)");
  process.exit(1);
}
try {
  const started = Date.now();
  await migratePostgres(url, defaultMigrationsFolder());
  console.log(`migrations applied (${Date.now() - started} ms)`);
} catch (err) {
  // The driver's message names the failing statement or connection problem, not credentials.
  console.error(`migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
