import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type {} from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

/** The PostgreSQL server tests use; CI starts it (.ci/run). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../migrations", import.meta.url));

/** Template database name: changes whenever a migration changes, so a stale template is never used. */
export function templateName(): string {
  const hash = createHash("sha256");
  for (const f of readdirSync(MIGRATIONS_FOLDER)
    .filter((f) => f.endsWith(".sql"))
    .sort()) {
    hash.update(f).update(readFileSync(join(MIGRATIONS_FOLDER, f)));
  }
  return `supamanager_tpl_${hash.digest("hex").slice(0, 12)}`;
}

export function urlForDatabase(name: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh database cloned from the migrated template; dropped by the returned function. */
export async function freshDatabase(template: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `supamanager_t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  await withAdminClient((c) => c.query(`create database "${name}" template "${template}"`));
  return {
    url: urlForDatabase(name),
    drop: () => withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`)).then(() => {}),
  };
}
