import type { Context } from "hono";
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { authed } from "../../lib/context.js";
import { jsonBody, param, shape } from "../../lib/validate.js";
import { listBackups } from "../../services/backups/index.js";
import { runQuery } from "../../services/pg-meta/query.js";
import { studioStatus } from "../platform/database/backups.js";
import { RefParam } from "../platform/projects/schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

const Sql = z
  .string({ error: "query must be a string" })
  .min(1, "query must not be empty")
  .max(1024 * 1024);
const Parameters = z.array(z.unknown()).max(10_000).optional();

/** V1RunQueryBody: `read_only: true` runs it as the read-only database role. */
export const V1RunQueryBody = z.object({ query: Sql, parameters: Parameters, read_only: z.boolean().optional() });
/** V1ReadOnlyQueryBody. */
export const V1ReadOnlyQueryBody = z.object({ query: Sql, parameters: Parameters });

/**
 * POST /v1/projects/:ref/database/query → 201 with the bare array of rows, like the platform's
 * pg-meta query (services/pg-meta/query.ts): members with sql.read; read_only members (and any
 * member asking `read_only: true`) run as the read-only database role, so PostgreSQL refuses
 * their writes. A SQL error answers 400 with PostgreSQL's message and code.
 */
async function runQueryRoute(c: Context<AppEnv>, forceReadOnly: boolean): Promise<Response> {
  const ref = refOf(c);
  const body = forceReadOnly
    ? { ...(await jsonBody(c, V1ReadOnlyQueryBody)), read_only: true }
    : await jsonBody(c, V1RunQueryBody);
  const answer = await runQuery(authed(c), ref, {
    query: body.query,
    parameters: body.parameters,
    readOnly: body.read_only === true,
  });
  if (answer.ok) return c.json(answer.rows as object, 201);
  return c.json(answer.error, answer.status as 400);
}

/** V1BackupsResponse. */
export const V1BackupsResponse = z.object({
  region: z.string(),
  walg_enabled: z.boolean(),
  pitr_enabled: z.boolean(),
  backups: z.array(
    z.object({
      is_physical_backup: z.boolean(),
      status: z.enum(["COMPLETED", "FAILED", "PENDING", "REMOVED", "ARCHIVED", "CANCELLED"]),
      inserted_at: z.string(),
    }),
  ),
  physical_backup_data: z.object({
    earliest_physical_backup_date_unix: z.number().int().optional(),
    latest_physical_backup_date_unix: z.number().int().optional(),
  }),
});

/**
 * GET /v1/projects/:ref/database/backups — the project's logical backups (docs/backups.md) for
 * members with backups.read. WAL-G and PITR are reported off: SupaManager takes logical backups
 * only. A backup being written reads PENDING (the document has no RUNNING).
 */
async function listBackupsRoute(c: Context<AppEnv>): Promise<Response> {
  const { project, rows } = await listBackups(authed(c), refOf(c));
  return c.json(
    shape(V1BackupsResponse, {
      region: project.region,
      walg_enabled: false,
      pitr_enabled: false,
      backups: rows.map((b) => ({
        is_physical_backup: false,
        status: studioStatus(b.status),
        inserted_at: b.createdAt.toISOString(),
      })),
      physical_backup_data: {},
    }),
  );
}

/** /v1/projects/:ref/database/… (mounted at /v1/projects). */
export function v1DatabaseRoutes() {
  const app = new Hono<AppEnv>();
  app.post("/:ref/database/query", (c) => runQueryRoute(c, false));
  app.post("/:ref/database/query/read-only", (c) => runQueryRoute(c, true));
  app.get("/:ref/database/backups", listBackupsRoute);
  return app;
}
