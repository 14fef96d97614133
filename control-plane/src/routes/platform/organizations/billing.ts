import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { query } from "../../../lib/validate.js";
import { getSubscription, getUsage, listEntitlements } from "../../../services/organizations/billing.js";
import { orgUsage } from "../../../services/organizations/usage.js";
import { orgSlug } from "./params.js";

/** GET …/billing/subscription — named stub: the Free plan, nothing billed. */
export async function subscription(c: Context<AppEnv>): Promise<Response> {
  return c.json(await getSubscription(authed(c), orgSlug(c)));
}

/** GET …/entitlements — what this instance offers (see services/organizations/billing.ts). */
export async function entitlements(c: Context<AppEnv>): Promise<Response> {
  return c.json(await listEntitlements(authed(c), orgSlug(c)));
}

const Day = z
  .string()
  .regex(/^\d{4}-\d\d-\d\d(T[\d:.]+(Z|[+-]\d\d:\d\d)?)?$/, "must be a date (YYYY-MM-DD or ISO 8601)");

/** Studio's daily-usage query: the window and, optionally, one project (either spelling). */
export const DailyUsageQuery = z.object({
  start: Day,
  end: Day,
  project_ref: z.string().max(64).optional(),
  projectRef: z.string().max(64).optional(),
});

/** Studio's org-usage query: `project_ref`, `start`, `end` (ISO), each optional. */
export const OrgUsageQuery = z.object({
  project_ref: z
    .string()
    .regex(/^[a-z]{20}$/, "project_ref must be a project ref")
    .optional(),
  start: Day.optional(),
  end: Day.optional(),
});

/**
 * GET …/usage — no usage billing, but real figures: database size, Storage size and Auth
 * sign-ins of each running project, measured now (services/organizations/usage.ts).
 */
export async function usage(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  // Membership first: a non-member gets 404 whatever the query says.
  await getUsage(authed(c), slug);
  return c.json(await orgUsage(authed(c), slug, query(c, OrgUsageQuery)));
}

/**
 * GET …/usage/daily — named stub: no usage is metered per day, so the list is empty
 * (OrgDailyUsageResponse `{usages: []}`), which Studio's usage page renders as no usage.
 */
export async function dailyUsage(c: Context<AppEnv>): Promise<Response> {
  // Membership first: a non-member gets 404 whatever the query says.
  const { usages } = await getUsage(authed(c), orgSlug(c));
  query(c, DailyUsageQuery);
  return c.json({ usages });
}
