import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, shape } from "../../../lib/validate.js";
import { type ProjectData, postgrestConfig, projectData } from "../../../services/secrets/studio-data.js";
import { connectionUri, DB_NAME, DB_USER, dbFacts } from "./databases.js";
import { RefParam } from "./schemas.js";
import { API_SCHEMAS } from "./settings.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** GET /platform/projects/:ref/config/postgrest (GetPostgrestConfigResponse; jwt_secret only for owner/administrator). */
export const PostgrestConfigResponse = z.object({
  db_schema: z.string(),
  db_extra_search_path: z.string(),
  max_rows: z.number(),
  db_anon_role: z.string(),
  role_claim_key: z.string(),
  jwt_secret: z.string().optional(),
});

/** The stack's PostgREST settings (fixed by the release; PATCH is not offered yet). */
export async function getPostgrestConfigRoute(c: Context<AppEnv>): Promise<Response> {
  const { jwtSecret } = await postgrestConfig(authed(c), refOf(c));
  return c.json(
    shape(PostgrestConfigResponse, {
      db_schema: API_SCHEMAS,
      db_extra_search_path: "public,extensions",
      max_rows: 1000,
      db_anon_role: "anon",
      role_claim_key: ".role",
      ...(jwtSecret !== undefined ? { jwt_secret: jwtSecret } : {}),
    }),
  );
}

const SupavisorConfig = z.object({
  identifier: z.string(),
  database_type: z.literal("PRIMARY"),
  db_host: z.string(),
  db_port: z.number(),
  db_name: z.string(),
  db_user: z.string(),
  connection_string: z.string(),
  connectionString: z.string(),
  default_pool_size: z.number().nullable(),
  max_client_conn: z.number().nullable(),
  pool_mode: z.enum(["transaction", "session"]),
  is_using_scram_auth: z.boolean(),
});
export const SupavisorConfigResponse = z.array(SupavisorConfig);

/** The release port under which the pooler's transaction-mode port is reserved (production release). */
const POOLER_PORTS = ["pooler-transaction"];

/**
 * The project's Supavisor as Studio and the Management API describe it: one entry when the
 * project's release runs Supavisor and a pooler port is reserved for it; none otherwise (the
 * `local` release has no pooler, and we do not pretend it has one). Connection strings carry a
 * password placeholder.
 */
function supavisorEntries(data: ProjectData): z.input<typeof SupavisorConfigResponse> {
  const port = POOLER_PORTS.map((n) => data.ports[n]).find((x) => x !== undefined);
  if (!data.releaseServices.includes("supavisor") || port === undefined) return [];
  const db = dbFacts(data.view);
  // Supavisor finds the tenant from the user name: `<user>.<tenant id>` (the tenant id is the ref).
  const user = `${DB_USER}.${data.view.ref}`;
  const uri = connectionUri(user, db.host, port);
  return [
    {
      identifier: data.view.ref,
      database_type: "PRIMARY",
      db_host: db.host,
      db_port: port,
      db_name: DB_NAME,
      db_user: user,
      connection_string: uri,
      connectionString: uri,
      default_pool_size: null,
      max_client_conn: null,
      pool_mode: "transaction",
      is_using_scram_auth: true,
    },
  ];
}

/**
 * GET /platform/projects/:ref/config/supavisor (Studio's Connect dialog and database settings)
 * and GET /v1/projects/:ref/config/database/pooler (Management API, CLI): the same entries.
 */
export async function getSupavisorConfigRoute(c: Context<AppEnv>): Promise<Response> {
  const data = await projectData(authed(c), refOf(c));
  return c.json(shape(SupavisorConfigResponse, supavisorEntries(data)));
}

export const PgbouncerConfigResponse = z.object({
  pgbouncer_enabled: z.boolean(),
  pool_mode: z.enum(["transaction", "session", "statement"]),
  connection_string: z.string(),
  db_dns_name: z.string(),
  db_host: z.string(),
  db_port: z.number(),
  db_name: z.string(),
  db_user: z.string(),
  ssl_enforced: z.boolean(),
  inserted_at: z.string(),
});

/**
 * GET /platform/projects/:ref/config/pgbouncer — no release runs PgBouncer: `pgbouncer_enabled`
 * is false and the connection facts are those of Postgres itself (direct connection).
 */
export async function getPgbouncerConfigRoute(c: Context<AppEnv>): Promise<Response> {
  const data = await projectData(authed(c), refOf(c));
  const db = dbFacts(data.view);
  return c.json(
    shape(PgbouncerConfigResponse, {
      pgbouncer_enabled: false,
      pool_mode: "transaction",
      connection_string: connectionUri(db.user, db.host, db.port),
      db_dns_name: db.host,
      db_host: db.host,
      db_port: db.port,
      db_name: DB_NAME,
      db_user: db.user,
      ssl_enforced: false,
      inserted_at: data.view.createdAt.toISOString(),
    }),
  );
}

export const PgbouncerStatusResponse = z.object({ active: z.boolean() });

/** GET /platform/projects/:ref/config/pgbouncer/status — no release runs PgBouncer: `{active: false}`. */
export async function getPgbouncerStatusRoute(c: Context<AppEnv>): Promise<Response> {
  await projectData(authed(c), refOf(c));
  return c.json(shape(PgbouncerStatusResponse, { active: false }));
}
