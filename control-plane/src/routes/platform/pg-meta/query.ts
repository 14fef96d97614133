import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, query } from "../../../lib/validate.js";
import { runQuery } from "../../../services/pg-meta/query.js";
import { RefParam } from "../projects/schemas.js";

/** Studio's RunQueryBody. */
export const RunQueryBody = z.object({
  query: z
    .string()
    .min(1, "query must not be empty")
    .max(1024 * 1024),
  parameters: z.array(z.unknown()).max(10_000).optional(),
  disable_statement_timeout: z.boolean().optional(),
});

/** `?key=` is Studio's cache key for the query; accepted and not used. */
const QueryParams = z.object({ key: z.string().max(2000).optional() });

/**
 * POST /platform/pg-meta/:ref/query → 201 with a bare JSON array of rows (what Studio's editors
 * expect). SQL errors answer 400 `{message, formattedError, code, …}` as postgres-meta reports
 * them. `x-connection-encrypted` (Studio echoes the connectionString of /databases) must stand
 * for this project when present.
 */
export async function runQueryRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = param(c, "ref", RefParam, "Project");
  query(c, QueryParams);
  const body = await jsonBody(c, RunQueryBody);
  const answer = await runQuery(
    authed(c),
    ref,
    { query: body.query, parameters: body.parameters, disableStatementTimeout: body.disable_statement_timeout },
    c.req.header("x-connection-encrypted"),
  );
  if (answer.ok) return c.json(answer.rows as object, 201);
  return c.json(answer.error, answer.status as 400);
}
