import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { badRequest } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { jsonBody } from "../../../lib/validate.js";
import { RELEASE_PARTS } from "../../../releases/manifest.js";
import { createProject } from "../../../services/projects/create.js";
import {
  CLOUD_PROVIDERS,
  COMPUTE_SIZES,
  DEFAULT_CLOUD_PROVIDER,
  POSTGRES_MAJOR,
} from "../../../services/projects/model.js";
import { legacyKeysFor } from "../../../services/secrets/api-keys.js";
import { createProjectResponse } from "./schemas.js";

/**
 * The database password rule: 8 to 128 characters, not blank, no control characters, no single
 * quote. The password ends up in connection strings and in the env files the fleet renders, where
 * a newline, a NUL or a single quote would break things; the upper bound keeps it well inside what Postgres and those files
 * take. (Studio's own form already nudges people to a strong generated password.)
 */
export const DbPassword = z
  .string({ error: "db_pass is required" })
  .min(8, "db_pass must be at least 8 characters")
  .max(128, "db_pass must be at most 128 characters")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), "db_pass must not contain control characters")
  // The host agent hands the password to Compose through a single-quoted .env line, which cannot
  // carry a single quote (it refuses the apply); refusing it here says so at create time.
  .refine((s) => !s.includes("'"), "db_pass must not contain a single quote (')")
  .refine((s) => s.trim().length > 0, "db_pass must not be blank");

/**
 * Studio's CreateProjectBody. Fields we have no use for yet (auth_site_url, db_sql,
 * data_api_*, release_channel, …) are accepted and ignored, since Studio sends them.
 */
export const CreateProjectBody = z.object({
  name: z.string({ error: "name is required" }).trim().min(1, "name must not be empty").max(256),
  organization_slug: z.string({ error: "organization_slug is required" }).min(1).max(64),
  db_pass: DbPassword,
  cloud_provider: z
    .enum(CLOUD_PROVIDERS, { error: `cloud_provider must be one of ${CLOUD_PROVIDERS.join(", ")}` })
    .default(DEFAULT_CLOUD_PROVIDER),
  db_region: z.string().min(1).max(64).optional(),
  region_selection: z
    .object({
      type: z.enum(["specific", "smartGroup"]),
      code: z.string().min(1).max(64),
    })
    .optional(),
  desired_instance_size: z
    .enum(COMPUTE_SIZES, { error: `desired_instance_size must be one of ${COMPUTE_SIZES.join(", ")}` })
    // Absent → the smallest size the release runs in (createProject).
    .optional(),
  postgres_engine: z
    .literal(POSTGRES_MAJOR, { error: `postgres_engine: only Postgres ${POSTGRES_MAJOR} is available` })
    .optional(),
  /** SupaManager: the release of the new project (GET /platform/fleet/releases); default: the default release. */
  release: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "release must be a release name (see GET /platform/fleet/releases)")
    .optional(),
  /** SupaManager: the release's optional parts to run (logs, realtime, storage, functions); default: the release's. */
  parts: z
    .array(z.enum(RELEASE_PARTS, { error: `parts must be among ${RELEASE_PARTS.join(", ")}` }))
    .max(4)
    .optional(),
});
export type CreateProjectBody = z.output<typeof CreateProjectBody>;

/** `db_region` or a specific `region_selection`; both may be given only when they agree. */
function requestedRegion(body: CreateProjectBody): string | undefined {
  const selection = body.region_selection;
  // Studio may offer Supabase's smart groups (americas, emea, apac). Our regions are the
  // operator's own, so a group means "wherever the instance puts new projects": the default region.
  if (selection?.type === "smartGroup") return body.db_region;
  if (selection && body.db_region !== undefined && selection.code !== body.db_region) {
    throw badRequest("Only one of db_region or region_selection may be given");
  }
  return selection?.code ?? body.db_region;
}

/** POST /platform/projects — 201 with the new project (status COMING_UP). */
export async function createProjectRoute(c: Context<AppEnv>): Promise<Response> {
  const body = await jsonBody(c, CreateProjectBody);
  const ctx = authed(c);
  const project = await createProject(ctx, {
    name: body.name,
    organizationSlug: body.organization_slug,
    dbPass: body.db_pass,
    cloudProvider: body.cloud_provider,
    region: requestedRegion(body),
    computeSize: body.desired_instance_size,
    release: body.release,
    parts: body.parts,
  });
  return c.json(createProjectResponse(project, await legacyKeysFor(ctx, project.ref)), 201);
}
