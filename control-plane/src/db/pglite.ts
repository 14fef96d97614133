import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import type { Database, DatabaseHandle } from "./index.js";
import { seedFor } from "./pglite-seed.js";
import * as schema from "./schema.js";

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
}

/**
 * Take an exclusive lock file in the data directory. PGlite is a single-process database:
 * two processes opening one directory would corrupt it, so the second one stops with a clear error.
 */
function lockDataDir(dir: string): () => void {
  const lockPath = join(dir, "supamanager.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx", 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(lockPath, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new DataDirLockedError(
          `The data directory ${dir} is in use by process ${pid}. The embedded database serves one process; ` +
            "set DATABASE_URL to run several control planes.",
        );
      }
      rmSync(lockPath, { force: true }); // stale lock from a process that died
    }
  }
  throw new DataDirLockedError(`Could not lock the data directory ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Open (creating if needed) the embedded database in `<dataDir>/pglite`. `dataDir` of null = in
 * memory. A new directory starts from the build's seed when there is one (pglite-seed.ts).
 */
export async function openPglite(dataDir: string | null, opts: { seed?: string } = {}): Promise<DatabaseHandle> {
  let unlock = () => {};
  let client: PGlite;
  if (dataDir === null) {
    client = new PGlite();
  } else {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    unlock = lockDataDir(dataDir);
    const pgdata = join(dataDir, "pglite");
    const seed = seedFor(pgdata, opts.seed);
    client = new PGlite(pgdata, seed ? { loadDataDir: seed } : {});
  }
  await client.waitReady;
  const db = drizzle(client, { schema }) as unknown as Database;
  return {
    db,
    driver: "pglite",
    async ping() {
      await client.query("select 1");
    },
    async close() {
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}

export async function migratePglite(handle: DatabaseHandle, migrationsFolder: string): Promise<void> {
  // The lock file already makes this process the only one using the directory.
  await migrate(handle.db as never, { migrationsFolder });
}
