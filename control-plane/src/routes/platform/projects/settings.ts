import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, shape } from "../../../lib/validate.js";
import { legacyKeysFor } from "../../../services/secrets/api-keys.js";
import { projectData } from "../../../services/secrets/studio-data.js";
import { DB_NAME, dbFacts } from "./databases.js";
import { endpointsOf, RefParam } from "./schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** The schemas PostgREST exposes (the stack's PGRST_DB_SCHEMAS). */
export const API_SCHEMAS = "public,storage,graphql_public";

/** GET /platform/projects/:ref/settings (ProjectSettingsResponse). */
export const ProjectSettingsResponse = z.object({
  ref: z.string(),
  name: z.string(),
  status: z.string(),
  cloud_provider: z.string(),
  region: z.string(),
  inserted_at: z.string(),
  db_host: z.string(),
  db_port: z.number(),
  db_user: z.string(),
  db_name: z.string(),
  db_dns_name: z.string(),
  db_ip_addr_config: z.string(),
  ssl_enforced: z.boolean(),
  is_sensitive: z.boolean(),
  service_api_keys: z.array(z.object({ name: z.string(), tags: z.string(), api_key: z.string() })),
  app_config: z.object({
    endpoint: z.string(),
    protocol: z.enum(["http", "https"]),
    storage_endpoint: z.string(),
    db_schema: z.string(),
  }),
});

/**
 * GET /platform/projects/:ref/settings. The project URL is `${protocol}://${endpoint}`: the
 * project's gateway on its host. `service_api_keys` lists the legacy keys for roles that may
 * read secrets and is empty for the others (Studio polls this endpoint while the list is empty
 * only when the role may read keys, so read-only members cause no polling).
 */
export async function getSettingsRoute(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const ref = refOf(c);
  const data = await projectData(ctx, ref);
  const keys = await legacyKeysFor(ctx, ref);
  const p = data.view;
  const e = endpointsOf(p);
  const db = dbFacts(p);
  return c.json(
    shape(ProjectSettingsResponse, {
      ref: p.ref,
      name: p.name,
      status: p.status,
      cloud_provider: p.cloudProvider,
      region: p.region,
      inserted_at: p.createdAt.toISOString(),
      db_host: db.host,
      db_port: db.port,
      db_user: db.user,
      db_name: DB_NAME,
      db_dns_name: db.host,
      db_ip_addr_config: "legacy",
      // The stack's Postgres accepts plain connections on the host's interface; nothing enforces TLS.
      ssl_enforced: false,
      is_sensitive: false,
      service_api_keys: keys
        ? [
            { name: "anon key", tags: "anon", api_key: keys.anon },
            { name: "service_role key", tags: "service_role", api_key: keys.serviceRole },
          ]
        : [],
      app_config: {
        endpoint: e.endpoint,
        protocol: e.restUrl.startsWith("https:") ? "https" : "http",
        storage_endpoint: e.endpoint,
        db_schema: "public",
      },
    }),
  );
}
