import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { badRequest } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, shape } from "../../../lib/validate.js";
import { projectForMember } from "../../../services/organizations/access.js";
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

/** What every release's PostgREST runs with (PGRST_DB_SCHEMAS, _EXTRA_SEARCH_PATH, _MAX_ROWS; no PGRST_DB_POOL). */
const POSTGREST = { db_schema: API_SCHEMAS, db_extra_search_path: "public,extensions", max_rows: 1000 } as const;

/** The stack's PostgREST settings (fixed by the release; see the PATCH below). */
export async function getPostgrestConfigRoute(c: Context<AppEnv>): Promise<Response> {
  const { jwtSecret } = await postgrestConfig(authed(c), refOf(c));
  return c.json(
    shape(PostgrestConfigResponse, {
      ...POSTGREST,
      db_anon_role: "anon",
      role_claim_key: ".role",
      ...(jwtSecret !== undefined ? { jwt_secret: jwtSecret } : {}),
    }),
  );
}

/** UpdatePostgrestConfigBody (platform.d.ts): what Studio's Data API settings form sends. */
export const UpdatePostgrestConfigBody = z.strictObject({
  db_schema: z.string().max(1024).optional(),
  db_extra_search_path: z.string().max(1024).optional(),
  max_rows: z.number().int().min(0).max(1_000_000).optional(),
  db_pool: z.number().int().min(0).max(1000).nullable().optional(),
});

/** UpdatePostgrestConfigResponse: `db_pool` null = not set (PostgREST's own default). */
export const UpdatePostgrestConfigResponse = z.object({
  db_schema: z.string(),
  db_extra_search_path: z.string(),
  max_rows: z.number(),
  db_pool: z.number().nullable(),
});

/** "public, storage" and "public,storage" are the same list; the order stays (the first schema is the default). */
const list = (v: string) =>
  v
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean)
    .join(",");

/** The fields of the body that differ from what the project's PostgREST runs with. */
export function postgrestChanges(body: z.infer<typeof UpdatePostgrestConfigBody>): string[] {
  const changed: string[] = [];
  if (body.db_schema !== undefined && list(body.db_schema) !== list(POSTGREST.db_schema)) changed.push("db_schema");
  if (
    body.db_extra_search_path !== undefined &&
    list(body.db_extra_search_path) !== list(POSTGREST.db_extra_search_path)
  )
    changed.push("db_extra_search_path");
  if (body.max_rows !== undefined && body.max_rows !== POSTGREST.max_rows) changed.push("max_rows");
  if (body.db_pool !== undefined && body.db_pool !== null) changed.push("db_pool");
  return changed;
}

/**
 * PATCH /platform/projects/:ref/config/postgrest (Studio's Data API settings,
 * project-postgrest-config-update-mutation.ts: `{db_schema, max_rows, db_extra_search_path}` and
 * `db_pool` when set). Nothing is stored: the release sets PostgREST's schemas, search path and
 * row limit for every project. The form sent back unchanged passes and answers the settings; a
 * change is refused with the fields named (Studio shows the message as a toast), never claimed.
 * Owners and administrators (projects.update), checked before the body is read.
 */
export async function patchPostgrestConfigRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  await projectForMember(authed(c), ref, "projects.update");
  const body = await jsonBody(c, UpdatePostgrestConfigBody);
  const changed = postgrestChanges(body);
  if (changed.length > 0) {
    throw badRequest(
      `Not changed: ${changed.join(", ")} ${changed.length === 1 ? "is" : "are"} not managed by SupaManager yet. Every project's Data API (PostgREST) runs with its release's settings: exposed schemas ${POSTGREST.db_schema}, extra search path ${POSTGREST.db_extra_search_path}, at most ${POSTGREST.max_rows} rows per request, PostgREST's own pool size.`,
    );
  }
  return c.json(shape(UpdatePostgrestConfigResponse, { ...POSTGREST, db_pool: null }));
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
