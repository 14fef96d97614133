import type { ExtractTablesWithRelations } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import type * as schema from "./schema.js";

export type Schema = typeof schema;

/** A drizzle database over any of our drivers (PGlite, node-postgres, Neon). */
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
/** A transaction handle; services accept `Database | Tx` as `Executor`. */
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
export type Executor = Database | Tx;

/** An open database plus what the process needs to manage it. */
export interface DatabaseHandle {
  db: Database;
  driver: "pglite" | "postgres" | "neon";
  /** Cheap liveness probe for /ready. */
  ping(): Promise<void>;
  /** Pool statistics for /metrics (absent for single-connection drivers). */
  poolStats?(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}
