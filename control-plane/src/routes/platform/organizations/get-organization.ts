import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { getOrganization } from "../../../services/organizations/organizations.js";
import { orgSlug } from "./params.js";

/** GET /platform/organizations/:slug */
export async function getOrg(c: Context<AppEnv>): Promise<Response> {
  return c.json(await getOrganization(authed(c), orgSlug(c)));
}
