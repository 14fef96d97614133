import { fileURLToPath } from "node:url";

/** Arbitrary constant for pg_advisory_lock around migrations ("supamgr" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x7375_7061_6d67;

/** The repository's /migrations folder, resolved from this file (src/ or dist/). */
export function defaultMigrationsFolder(): string {
  return fileURLToPath(new URL("../../../migrations", import.meta.url));
}
