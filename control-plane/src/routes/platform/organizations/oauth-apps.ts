import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { query } from "../../../lib/validate.js";
import { orgForMember } from "../../../services/organizations/access.js";
import { orgSlug } from "./params.js";

const OAuthAppsQuery = z.object({
  type: z.enum(["published", "authorized"], { error: "type must be published or authorized" }).optional(),
});

/**
 * GET /platform/organizations/:slug/oauth/apps?type=published|authorized — STUB: SupaManager has
 * no OAuth apps (organizations cannot publish one, and none can be authorized), so both lists are
 * empty. Studio's new-project form and the organization's OAuth apps page read it.
 */
export async function listOAuthApps(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  query(c, OAuthAppsQuery);
  await orgForMember(authed(c), slug, "org.read");
  return c.json([]);
}
