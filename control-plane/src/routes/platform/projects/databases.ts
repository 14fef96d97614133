import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, shape } from "../../../lib/validate.js";
import { databaseStatus, type ProjectView } from "../../../services/projects/model.js";
import { projectData } from "../../../services/secrets/studio-data.js";
import { endpointsOf, RefParam } from "./schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** Database name and superuser of every project's Postgres (the stack's defaults). */
export const DB_NAME = "postgres";
export const DB_USER = "postgres";
/** Postgres' own port, answered until the project is placed and has a reserved one. */
const DEFAULT_DB_PORT = 5432;

/**
 * Where the project's Postgres answers and as whom a member connects: the host's bind address,
 * the reserved db port, and `postgres` — or, when the release publishes Postgres only through
 * Supavisor's session port, `postgres.<ref>` (Supavisor finds the tenant in the user name).
 */
export function dbFacts(p: ProjectView): { host: string; port: number; user: string; restUrl: string } {
  const e = endpointsOf(p);
  const user = p.endpoints?.dbViaPooler ? `${DB_USER}.${p.ref}` : DB_USER;
  return { host: e.dbHost, port: e.dbPort ?? DEFAULT_DB_PORT, user, restUrl: e.restUrl };
}

/**
 * A libpq URI with Supabase's `[YOUR-PASSWORD]` placeholder: what a member copies to connect.
 * Never the password itself.
 */
export function connectionUri(user: string, host: string, port: number): string {
  const h = host.includes(":") ? `[${host}]` : host;
  return `postgresql://${user}:[YOUR-PASSWORD]@${h}:${port}/${DB_NAME}`;
}

/** An item of GET /platform/projects/:ref/databases (DatabaseDetailResponse). */
const DatabaseDetail = z.object({
  identifier: z.string(),
  connectionString: z.string().nullable(),
  connection_string_read_only: z.string().nullable(),
  db_host: z.string(),
  db_port: z.number(),
  db_name: z.string(),
  db_user: z.string(),
  region: z.string(),
  cloud_provider: z.string(),
  restUrl: z.string(),
  size: z.string(),
  status: z.string(),
  inserted_at: z.string(),
});
export const DatabasesResponse = z.array(DatabaseDetail);

/**
 * GET /platform/projects/:ref/databases — the primary database only (no read replicas).
 * `connectionString` is the opaque token Studio sends back in `x-connection-encrypted`.
 */
export async function listDatabasesRoute(c: Context<AppEnv>): Promise<Response> {
  const data = await projectData(authed(c), refOf(c));
  const p = data.view;
  const db = dbFacts(p);
  return c.json(
    shape(DatabasesResponse, [
      {
        identifier: p.ref,
        connectionString: data.connectionToken,
        connection_string_read_only: null,
        db_host: db.host,
        db_port: db.port,
        db_name: DB_NAME,
        db_user: db.user,
        region: p.region,
        cloud_provider: p.cloudProvider,
        restUrl: db.restUrl,
        size: p.computeSize,
        status: databaseStatus(p.status),
        inserted_at: p.createdAt.toISOString(),
      },
    ]),
  );
}
