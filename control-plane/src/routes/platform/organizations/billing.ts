import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { query } from "../../../lib/validate.js";
import {
  getCustomer,
  getSubscription,
  getTaxId,
  getUsage,
  listEntitlements,
  listInvoices,
  listPaymentMethods,
} from "../../../services/organizations/billing.js";
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

/**
 * The Stripe-backed billing pages (customer, payment methods, invoices, tax ids): SupaManager bills
 * nobody, so these are named stubs with Studio's shapes saying "nothing here"
 * (services/organizations/billing.ts; docs/studio-stubs.md). The profile's `disabled_features`
 * already hide most of these sections; the answers keep any page that still asks from erroring.
 * Writes (adding a card, a tax id, a billing address) are not served: nothing would be stored.
 */

/** GET …/customer (organization-customer-profile-query.ts). */
export async function customer(c: Context<AppEnv>): Promise<Response> {
  return c.json(await getCustomer(authed(c), orgSlug(c)));
}

/** GET …/payments (organization-payment-methods-query.ts, `Version: 2`). */
export async function paymentMethods(c: Context<AppEnv>): Promise<Response> {
  return c.json(await listPaymentMethods(authed(c), orgSlug(c)));
}

/** Studio pages invoices with `offset` and `limit` (invoices-query.ts). */
export const InvoicesQuery = z.object({
  offset: z.coerce.number().int().min(0).max(1_000_000).optional(),
  limit: z.coerce.number().int().min(1).max(100).optional(),
});

/**
 * GET …/billing/invoices (invoices-query.ts) and HEAD (invoices-count-query.ts, which reads
 * `X-Total-Count`): no invoices, count 0.
 */
export async function invoices(c: Context<AppEnv>): Promise<Response> {
  const list = await listInvoices(authed(c), orgSlug(c));
  query(c, InvoicesQuery);
  c.header("X-Total-Count", String(list.length));
  return c.json(list);
}

/** GET …/tax-ids (organization-tax-id-query.ts, `Version: 2`, reads `tax_id`). */
export async function taxId(c: Context<AppEnv>): Promise<Response> {
  return c.json(await getTaxId(authed(c), orgSlug(c)));
}
