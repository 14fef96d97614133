import type { Executor } from "./index.js";

const statements = new WeakMap<object, Map<string, unknown>>();

/**
 * A hot read built once per database handle instead of on every request (ADR 0042): drizzle
 * builds a query's SQL text and parameter list from its builder chain each time it runs, which a
 * CPU profile under load showed costing as much as the rest of the request's own work. `build`
 * receives the handle and the statement's name and returns `….prepare(name)` with
 * `sql.placeholder()` for each value; callers `execute()` it with the values.
 *
 * The name is a server-side prepared statement on node-postgres: each pooled connection parses
 * and plans it once. That needs a real session (PostgreSQL itself or a session-mode pooler),
 * which the Node entry already requires for LISTEN (docs/deploy-node.md). Names must be unique
 * per SQL text (`sm_` + what it reads). Other drivers ignore the name (PGlite) or open a pool per
 * request (Neon on Workers, where this saves nothing and costs nothing).
 */
export function prepared<T>(db: Executor, name: string, build: (db: Executor, name: string) => T): T {
  let byName = statements.get(db);
  if (!byName) {
    byName = new Map();
    statements.set(db, byName);
  }
  let statement = byName.get(name) as T | undefined;
  if (statement === undefined) {
    statement = build(db, name);
    byName.set(name, statement);
  }
  return statement;
}
