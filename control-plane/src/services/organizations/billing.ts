import type { AuthedContext } from "../../deps.js";
import { orgForMember } from "./access.js";
import { ORG_PLAN } from "./organizations.js";

/**
 * Billing answers. SupaManager bills nobody: these are named stubs that tell Studio the truth
 * in its own shapes (a Free plan, no add-ons, no usage billing) so its pages render and its
 * plan-gated buttons (Pause) work.
 */

/** How far back the audit log page lets people look (days). Rows themselves are never pruned. */
export const AUDIT_LOG_DAYS = 365;
/** What the backups page reports as retention; the backups area keeps backups at least this long. */
export const BACKUP_RETENTION_DAYS = 7;
/** Log retention of a project's own analytics stack. */
export const LOG_RETENTION_DAYS = 7;

type BooleanConfig = { enabled: boolean };
type NumericConfig = { enabled: boolean; unit: string; unlimited: boolean; value: number };
type SetConfig = { enabled: boolean; set: string[] };

export type Entitlement =
  | { feature: { key: string; type: "boolean" }; hasAccess: boolean; type: "boolean"; config: BooleanConfig }
  | { feature: { key: string; type: "numeric" }; hasAccess: boolean; type: "numeric"; config: NumericConfig }
  | { feature: { key: string; type: "set" }; hasAccess: boolean; type: "set"; config: SetConfig };

const flag = (key: string, hasAccess: boolean): Entitlement => ({
  feature: { key, type: "boolean" },
  hasAccess,
  type: "boolean",
  config: { enabled: hasAccess },
});
const days = (key: string, value: number): Entitlement => ({
  feature: { key, type: "numeric" },
  hasAccess: true,
  type: "numeric",
  config: { enabled: true, unit: "days", unlimited: false, value },
});
const noneOf = (key: string): Entitlement => ({
  feature: { key, type: "set" },
  hasAccess: false,
  type: "set",
  config: { enabled: false, set: [] },
});
const noCount = (key: string): Entitlement => ({
  feature: { key, type: "numeric" },
  hasAccess: false,
  type: "numeric",
  config: { enabled: false, unit: "count", unlimited: false, value: 0 },
});

/**
 * Studio treats a missing key as "no access". Keys listed with hasAccess:false are features of
 * Supabase's hosted platform (custom domains, IPv4 add-ons, PITR, branching, read replicas,
 * SSO, compliance documents, private link, ETL, project-scoped roles…) that SupaManager does
 * not offer; listing them explicitly documents the decision.
 */
export const ENTITLEMENTS: readonly Entitlement[] = [
  flag("project_pausing", true),
  days("backup.retention_days", BACKUP_RETENTION_DAYS),
  days("security.audit_logs_days", AUDIT_LOG_DAYS),
  days("log.retention_days", LOG_RETENTION_DAYS),
  flag("security.member_roles", true),
  // Hosted-only:
  flag("project_cloning", false),
  flag("project_scoped_roles", false),
  flag("security.enforce_mfa", false),
  flag("security.private_link", false),
  flag("security.soc2_report", false),
  flag("security.questionnaire", false),
  flag("custom_domain", false),
  flag("vanity_subdomain", false),
  flag("ipv4", false),
  flag("log_drains", false),
  flag("branching_persistent", false),
  flag("auth.platform.sso", false),
  flag("instances.read_replicas", false),
  flag("instances.disk_modifications", false),
  flag("replication.etl", false),
  flag("storage.vector_buckets", false),
  flag("storage.iceberg_catalog", false),
  noCount("branching_limit"),
  noneOf("pitr.available_variants"),
  noneOf("instances.compute_update_available_sizes"),
];

export async function listEntitlements(ctx: AuthedContext, slug: string): Promise<{ entitlements: Entitlement[] }> {
  await orgForMember(ctx, slug, "org.read");
  return { entitlements: ENTITLEMENTS.map((e) => structuredClone(e)) };
}

/** GetSubscriptionResponse: the Free plan, billed monthly from the first of the month, nothing owed. */
export async function getSubscription(ctx: AuthedContext, slug: string) {
  await orgForMember(ctx, slug, "billing.read");
  const now = new Date(ctx.deps.clock.now());
  const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) / 1000;
  const end = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) / 1000;
  return {
    plan: { ...ORG_PLAN },
    addons: [],
    project_addons: [],
    billing_cycle_anchor: start,
    billing_via_partner: false,
    current_period_start: start,
    current_period_end: end,
    next_invoice_at: end,
    payment_method_type: "",
    customer_balance: 0,
    scheduled_plan_change: null,
    usage_billing_enabled: false,
  };
}

/** Membership (billing.read) for the usage pages; no usage is billed or metered per day (the figures: usage.ts). */
export async function getUsage(ctx: AuthedContext, slug: string) {
  await orgForMember(ctx, slug, "billing.read");
  return { usage_billing_enabled: false, usages: [] as never[] };
}

/**
 * GET …/customer — STUB (CustomerResponse): there is no Stripe customer behind an
 * organization; what Studio shows is the organization's own billing address (its billing e-mail,
 * no postal address), a zero balance and no billing partner.
 */
export async function getCustomer(ctx: AuthedContext, slug: string) {
  const { org } = await orgForMember(ctx, slug, "billing.read");
  return { email: org.billingEmail ?? "", additional_emails: [] as string[], balance: 0, billing_via_partner: false };
}

/** GET …/payments (Version 2, PaymentsResponse) — STUB: no payment method is on file, none is needed. */
export async function listPaymentMethods(ctx: AuthedContext, slug: string) {
  await orgForMember(ctx, slug, "billing.read");
  return { data: [] as never[], defaultPaymentMethodId: null };
}

/** GET|HEAD …/billing/invoices — STUB: nothing is billed, so there are no invoices (count 0). */
export async function listInvoices(ctx: AuthedContext, slug: string) {
  await orgForMember(ctx, slug, "billing.read");
  return [] as never[];
}

/** GET …/tax-ids (Version 2, TaxIdResponse) — STUB: no tax id is kept (`{tax_id: null}`). */
export async function getTaxId(ctx: AuthedContext, slug: string) {
  await orgForMember(ctx, slug, "billing.read");
  return { tax_id: null };
}
