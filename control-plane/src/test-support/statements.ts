import pg from "pg";

/**
 * Counts the SQL statements this process sends to PostgreSQL while `fn` runs: every
 * `pg.Client#query` call, which is one round trip to the server (BEGIN and COMMIT included; a
 * pool's `query` goes through a client's). For regression tests of how many round trips a request
 * costs — counts, not timings. Not re-entrant: one counting window at a time per process.
 */
export async function countStatements<T>(fn: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const statements: string[] = [];
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === "string" ? first : ((first as { text?: string } | undefined)?.text ?? "?");
    statements.push(text.replace(/\s+/g, " ").slice(0, 160));
    return original.apply(this, args);
  };
  try {
    const result = await fn();
    return { result, statements };
  } finally {
    proto.query = original;
  }
}
