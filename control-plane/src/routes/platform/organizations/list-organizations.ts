import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { listOrganizations } from "../../../services/organizations/organizations.js";

/** GET /platform/organizations — the organizations the caller belongs to. */
export async function listOrgs(c: Context<AppEnv>): Promise<Response> {
  return c.json(await listOrganizations(authed(c)));
}
