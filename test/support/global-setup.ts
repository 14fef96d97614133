import type { TestProject } from "vitest/node";
import { migratePostgres } from "../../control-plane/src/db/postgres.js";
import { MIGRATIONS_FOLDER, templateName, urlForDatabase, withAdminClient } from "./pg.js";

/**
 * Build (once per migration set) a migrated template database; each test file clones it.
 * Creation is guarded by an advisory lock so parallel runs don't race.
 */
export default async function setup(project: TestProject) {
  const name = templateName();
  await withAdminClient(async (c) => {
    await c.query("select pg_advisory_lock(4242)");
    try {
      const { rowCount } = await c.query("select 1 from pg_database where datname = $1", [name]);
      if (!rowCount) {
        const building = `${name}_building`;
        await c.query(`drop database if exists "${building}"`);
        await c.query(`create database "${building}"`);
        await migratePostgres(urlForDatabase(building), MIGRATIONS_FOLDER);
        await c.query(`alter database "${building}" rename to "${name}"`);
      }
      // Leftovers of interrupted runs.
      const { rows } = await c.query<{ datname: string }>(
        "select datname from pg_database where datname like 'supamanager_t\\_%' and datname < $1",
        [`supamanager_t_${(Date.now() - 3600_000).toString(36)}`],
      );
      for (const r of rows) await c.query(`drop database if exists "${r.datname}" with (force)`);
    } finally {
      await c.query("select pg_advisory_unlock(4242)");
    }
  });
  project.provide("templateDatabase", name);
}
