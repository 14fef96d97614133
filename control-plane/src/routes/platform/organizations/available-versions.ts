import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, shape } from "../../../lib/validate.js";
import { orgForMember } from "../../../services/organizations/access.js";
import { CLOUD_PROVIDERS, DB_VERSION, POSTGRES_MAJOR } from "../../../services/projects/model.js";
import { orgSlug } from "./params.js";

/** Studio's new-project form posts the provider and the region label it currently shows. */
export const AvailableVersionsBody = z.object({
  provider: z.enum(CLOUD_PROVIDERS, { error: `provider must be one of ${CLOUD_PROVIDERS.join(", ")}` }).optional(),
  region: z.string().max(128).optional(),
});

const AvailableVersions = z.object({
  available_versions: z.array(
    z.object({ postgres_engine: z.string(), release_channel: z.string(), version: z.string() }),
  ),
});

/**
 * POST /platform/organizations/:slug/available-versions — the Postgres versions a new project of
 * this organization can get. Every project runs the one Postgres the releases pin (GA), in every
 * region, so the answer does not depend on the provider or region Studio names. Studio looks for
 * a `17-oriole` entry to offer OrioleDB; there is none, so it offers plain Postgres only.
 */
export async function availableVersions(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  await jsonBody(c, AvailableVersionsBody);
  await orgForMember(authed(c), slug, "org.read");
  return c.json(
    shape(AvailableVersions, {
      available_versions: [
        {
          postgres_engine: POSTGRES_MAJOR,
          release_channel: "ga",
          version: DB_VERSION.replace(/^supabase-postgres-/, ""),
        },
      ],
    }),
  );
}
