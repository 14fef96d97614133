import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody } from "../../../lib/validate.js";
import { updateOrganization } from "../../../services/organizations/organizations.js";
import { OrgName } from "./create-organization.js";
import { orgSlug } from "./params.js";

export const UpdateOrganizationBody = z.object({
  name: OrgName.optional(),
  billing_email: z.email("billing_email must be a valid address").max(320).nullish(),
  opt_in_tags: z.array(z.string().max(100)).max(20).optional(),
});

/** PATCH /platform/organizations/:slug — Owners and Administrators (matrix: org.update). */
export async function updateOrg(c: Context<AppEnv>): Promise<Response> {
  const body = await jsonBody(c, UpdateOrganizationBody);
  return c.json(await updateOrganization(authed(c), orgSlug(c), body));
}
