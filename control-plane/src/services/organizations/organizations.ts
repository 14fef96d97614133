import { newOrgSlug, type OrgRole } from "@supamanager/shared";
import { and, asc, count, eq, ne } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { organizations, orgMembers, projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest, conflict } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { type OrgRow, orgForMember } from "./access.js";

/** Every organization on SupaManager reports Supabase's Free plan: Studio enables Pause only there. */
export const ORG_PLAN = { id: "free", name: "Free" } as const;

/** Studio's OrganizationResponse (GET /platform/organizations, POST /platform/organizations). */
export interface OrganizationResponse {
  id: number;
  slug: string;
  name: string;
  plan: { id: "free"; name: "Free" };
  billing_email: string | null;
  is_owner: boolean;
  opt_in_tags: string[];
  organization_requires_mfa: boolean;
  restriction_status: null;
  restriction_data: null;
  billing_partner: null;
  organization_missing_address: boolean;
  stripe_customer_id: null;
  subscription_id: null;
  usage_billing_enabled: boolean;
}

/** Studio's OrganizationSlugResponse (GET /platform/organizations/:slug). */
export interface OrganizationSlugResponse {
  id: number;
  slug: string;
  name: string;
  plan: { id: "free"; name: "Free" };
  billing_email: string | null;
  opt_in_tags: string[];
  restriction_status: null;
  restriction_data: null;
  billing_partner: null;
  usage_billing_enabled: boolean;
  has_oriole_project: boolean;
}

export function toOrganizationResponse(org: OrgRow, role: OrgRole): OrganizationResponse {
  return {
    id: org.id,
    slug: org.slug,
    name: org.name,
    plan: { ...ORG_PLAN },
    billing_email: org.billingEmail,
    is_owner: role === "owner",
    // Opt-in tags switch on Supabase-hosted AI features, which SupaManager does not have.
    opt_in_tags: [],
    organization_requires_mfa: false,
    restriction_status: null,
    restriction_data: null,
    billing_partner: null,
    organization_missing_address: false,
    stripe_customer_id: null,
    subscription_id: null,
    usage_billing_enabled: false,
  };
}

export function toOrganizationSlugResponse(org: OrgRow, role: OrgRole): OrganizationSlugResponse {
  const { id, slug, name, plan, billing_email, opt_in_tags, restriction_status, restriction_data, billing_partner } =
    toOrganizationResponse(org, role);
  return {
    id,
    slug,
    name,
    plan,
    billing_email,
    opt_in_tags,
    restriction_status,
    restriction_data,
    billing_partner,
    usage_billing_enabled: false,
    has_oriole_project: false,
  };
}

/** The organizations the caller belongs to, oldest first. */
export async function listOrganizations(ctx: AuthedContext): Promise<OrganizationResponse[]> {
  const rows = await ctx.db
    .select({ org: organizations, role: orgMembers.role })
    .from(orgMembers)
    .innerJoin(organizations, eq(organizations.id, orgMembers.orgId))
    .where(eq(orgMembers.userId, ctx.actor.userId))
    .orderBy(asc(organizations.id));
  return rows.map((r) => toOrganizationResponse(r.org, r.role));
}

/**
 * Create an organization with the caller as its Owner. The organization, the membership and
 * the audit row share one transaction, so the creator's permissions exist the moment Studio
 * puts the returned object into its cache.
 */
export async function createOrganization(
  ctx: AuthedContext,
  input: { name: string; tier: string; kind?: string | undefined; size?: string | undefined },
): Promise<OrganizationResponse> {
  return ctx.db.transaction(async (tx) => {
    const [org] = await tx
      .insert(organizations)
      .values({ slug: newOrgSlug(), name: input.name, billingEmail: ctx.actor.email, plan: ORG_PLAN.id })
      .returning();
    if (!org) throw new Error("insert returned no organization");
    await tx.insert(orgMembers).values({ orgId: org.id, userId: ctx.actor.userId, role: "owner" });
    await recordAudit(tx, ctx.meta, {
      action: "org.create",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      target: org.slug,
      // The requested tier is recorded; every organization runs on the Free plan here.
      details: { name: org.name, tier: input.tier, kind: input.kind ?? null, size: input.size ?? null },
    });
    return toOrganizationResponse(org, "owner");
  });
}

export async function getOrganization(ctx: AuthedContext, slug: string): Promise<OrganizationSlugResponse> {
  const { org, role } = await orgForMember(ctx, slug, "org.read");
  return toOrganizationSlugResponse(org, role);
}

export async function updateOrganization(
  ctx: AuthedContext,
  slug: string,
  input: { name?: string | undefined; billing_email?: string | null | undefined; opt_in_tags?: string[] | undefined },
): Promise<OrganizationResponse> {
  const { org, role } = await orgForMember(ctx, slug, "org.update");
  if (input.opt_in_tags && input.opt_in_tags.length > 0) {
    throw badRequest("opt_in_tags: opt-in features (Supabase AI) are not available on SupaManager; send []");
  }
  const changes: Partial<Pick<OrgRow, "name" | "billingEmail">> = {};
  if (input.name !== undefined) changes.name = input.name;
  if (input.billing_email !== undefined) changes.billingEmail = input.billing_email;
  if (Object.keys(changes).length === 0) return toOrganizationResponse(org, role);
  return ctx.db.transaction(async (tx) => {
    const [updated] = await tx
      .update(organizations)
      .set({ ...changes, updatedAt: new Date(ctx.deps.clock.now()) })
      .where(eq(organizations.id, org.id))
      .returning();
    if (!updated) throw new Error("organization vanished during update");
    await recordAudit(tx, ctx.meta, {
      action: "org.update",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      target: org.slug,
      details: { fields: Object.keys(input).filter((k) => k !== "opt_in_tags"), name: updated.name },
    });
    return toOrganizationResponse(updated, role);
  });
}

/**
 * Delete an organization (Owner only). Refused while it still has projects that are not
 * REMOVED; the rows of REMOVED projects go with it. The audit row keeps the slug and id
 * (its org_id becomes null with the organization, as the foreign key says).
 */
export async function deleteOrganization(ctx: AuthedContext, slug: string): Promise<{ id: number; slug: string }> {
  const { org } = await orgForMember(ctx, slug, "org.delete");
  return ctx.db.transaction(async (tx) => {
    await lockOrganization(tx, org.id);
    const [live] = await tx
      .select({ n: count() })
      .from(projects)
      .where(and(eq(projects.orgId, org.id), ne(projects.status, "REMOVED")));
    const n = live?.n ?? 0;
    if (n > 0) {
      throw conflict(
        `Organization ${slug} still has ${n} project${n === 1 ? "" : "s"}; delete ${n === 1 ? "it" : "them"} first`,
      );
    }
    await tx.delete(projects).where(and(eq(projects.orgId, org.id), eq(projects.status, "REMOVED")));
    await tx.delete(organizations).where(eq(organizations.id, org.id));
    await recordAudit(tx, ctx.meta, {
      action: "org.delete",
      outcome: "success",
      actor: ctx.actor,
      orgId: null,
      target: org.slug,
      details: { org_id: org.id, name: org.name },
    });
    return { id: org.id, slug: org.slug };
  });
}

/**
 * Serialise changes to one organization's membership (last-owner rules, deletion) across
 * concurrent requests and replicas.
 */
export async function lockOrganization(tx: Executor, orgId: number): Promise<void> {
  await tx.select({ id: organizations.id }).from(organizations).where(eq(organizations.id, orgId)).for("update");
}
