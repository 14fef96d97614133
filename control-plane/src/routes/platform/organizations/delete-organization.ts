import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { deleteOrganization } from "../../../services/organizations/organizations.js";
import { orgSlug } from "./params.js";

/** DELETE /platform/organizations/:slug — Owners only; 409 while live projects remain. */
export async function deleteOrg(c: Context<AppEnv>): Promise<Response> {
  return c.json(await deleteOrganization(authed(c), orgSlug(c)));
}
