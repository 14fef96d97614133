import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { shape } from "../../../lib/validate.js";

/** One release as operators see it (GET /platform/fleet/releases, `supamanager releases`). */
export const ReleaseItem = z.object({
  name: z.string(),
  description: z.string().nullable(),
  /** The upstream version the release follows (e.g. supabase/supabase self-hosted/v0.8.2). */
  upstream: z.string().nullable(),
  /** Optional parts a project may choose (logs, realtime, storage, functions). */
  parts: z.array(z.string()),
  /** The parts a new project gets when it names none. */
  default_parts: z.array(z.string()),
  /** The release minimum with the default parts, and the smallest compute size that holds it. */
  minimum_memory_bytes: z.number().int(),
  minimum_compute_size: z.string().nullable(),
  /** New projects get this release when they name none. */
  default: z.boolean(),
});

/** GET /platform/fleet/releases — every release this control plane runs (instance admin). */
export async function listReleasesRoute(c: Context<AppEnv>): Promise<Response> {
  const items = c
    .get("deps")
    .releases.list()
    .map((r) => ({
      name: r.name,
      description: r.description,
      upstream: r.upstream,
      parts: r.parts,
      default_parts: r.defaultParts,
      minimum_memory_bytes: r.minimumMemoryBytes,
      minimum_compute_size: r.minimumComputeSize,
      default: r.default,
    }));
  return c.json(shape(z.array(ReleaseItem), items));
}
