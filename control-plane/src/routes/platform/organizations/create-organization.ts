import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody } from "../../../lib/validate.js";
import { createOrganization } from "../../../services/organizations/organizations.js";

/** Studio's tiers; whichever is asked for, the organization runs on the Free plan here. */
export const TIERS = ["tier_free", "tier_pro", "tier_payg", "tier_team", "tier_enterprise", "tier_platform"] as const;

export const OrgName = z
  .string()
  .trim()
  .min(1, "name must not be empty")
  .max(100, "name must be at most 100 characters")
  .refine(
    (s) => ![...s].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === "\u007f"),
    "name must not contain control characters",
  );

/** CreateOrganizationBody. Billing fields (address, tax_id, payment_method…) are accepted and ignored. */
export const CreateOrganizationBody = z.object({
  name: OrgName,
  tier: z.enum(TIERS, { error: `tier must be one of ${TIERS.join(", ")}` }),
  kind: z.string().max(100).optional(),
  size: z.string().max(100).optional(),
});

/** POST /platform/organizations → 201 with the full organization (Studio caches it as is). */
export async function createOrg(c: Context<AppEnv>): Promise<Response> {
  const body = await jsonBody(c, CreateOrganizationBody);
  return c.json(await createOrganization(authed(c), body), 201);
}
