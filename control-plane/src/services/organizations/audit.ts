import { and, desc, eq, gte, lte } from "drizzle-orm";
import { auditLog, organizations } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest } from "../../errors.js";
import { orgForMember } from "./access.js";
import { AUDIT_LOG_DAYS } from "./billing.js";

/** Most rows one request returns; Studio asks for a time window, newest first. */
export const AUDIT_MAX_LIMIT = 1000;
export const AUDIT_DEFAULT_LIMIT = 500;

/**
 * One item of Studio's audit log pages. Studio's audit page reads `occurred_at`, `action.name`,
 * `action.metadata[0]` (method, status), `actor.id`, `actor.metadata[0].email` and
 * `target.description`/`target.metadata`; some builds read the newer flat fields instead
 * (`timestamp` in microseconds, `request_id`, `actor.user_id`/`email`). Every item carries both,
 * so either kind of build renders it.
 */
export interface AuditLogItem {
  occurred_at: string;
  timestamp: number;
  request_id: string;
  organization_slug: string | null;
  project_ref?: string;
  action: {
    name: string;
    method: string;
    route: string;
    status: number;
    metadata: Record<string, unknown>[];
  };
  actor: {
    id: string;
    type: "user" | "anonymous";
    metadata: { email?: string; ip?: string }[];
    token_type: string;
    user_id?: string;
    email?: string;
    ip?: string;
  };
  target: { description: string; metadata: { org_slug?: string; project_ref?: string } };
}

export interface AuditLogPage {
  result: AuditLogItem[];
  /** Days the page may look back (matches the security.audit_logs_days entitlement). */
  retention_period: number;
}

/**
 * The organization's audit rows between `start` and `end` (each optional; rows carry the
 * database's own timestamps), newest first, at most `limit` of them. Only rows recorded against this organization: sign-ins (org_id null) and other
 * organizations' rows never appear.
 */
export async function listOrgAudit(
  ctx: AuthedContext,
  slug: string,
  input: { start?: Date | undefined; end?: Date | undefined; limit?: number | undefined },
): Promise<AuditLogPage> {
  const { org } = await orgForMember(ctx, slug, "audit.read");
  const { start, end } = input;
  if (start && end && start.getTime() > end.getTime()) {
    throw badRequest("iso_timestamp_start must not be after iso_timestamp_end");
  }
  const limit = Math.min(input.limit ?? AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT);
  const rows = await ctx.db
    .select(AUDIT_COLUMNS)
    .from(auditLog)
    .where(
      and(
        eq(auditLog.orgId, org.id),
        start ? gte(auditLog.createdAt, start) : undefined,
        end ? lte(auditLog.createdAt, end) : undefined,
      ),
    )
    .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
    .limit(limit);
  return { result: rows.map((r) => auditItem(r, org.slug)), retention_period: AUDIT_LOG_DAYS };
}

const AUDIT_COLUMNS = {
  id: auditLog.id,
  projectRef: auditLog.projectRef,
  actorId: auditLog.actorId,
  actorEmail: auditLog.actorEmail,
  action: auditLog.action,
  target: auditLog.target,
  outcome: auditLog.outcome,
  ip: auditLog.ip,
  requestId: auditLog.requestId,
  details: auditLog.details,
  createdAt: auditLog.createdAt,
};

type AuditRow = {
  projectRef: string | null;
  actorId: string | null;
  actorEmail: string | null;
  action: string;
  target: string | null;
  outcome: "success" | "failure";
  ip: string | null;
  requestId: string | null;
  details: Record<string, unknown> | null;
  createdAt: Date;
};

/** An audit row in Studio's shape (see AuditLogItem). */
function auditItem(r: AuditRow, orgSlug: string | null): AuditLogItem {
  // Audit rows record what changed, not the HTTP call that changed it: no method or route.
  const status = r.outcome === "success" ? 200 : 400;
  const email = r.actorEmail ?? undefined;
  const ip = r.ip ?? undefined;
  return {
    occurred_at: r.createdAt.toISOString(),
    timestamp: r.createdAt.getTime() * 1000,
    request_id: r.requestId ?? "",
    organization_slug: orgSlug,
    ...(r.projectRef ? { project_ref: r.projectRef } : {}),
    action: {
      name: r.action,
      method: "",
      route: "",
      status,
      metadata: [
        { method: "", status, outcome: r.outcome, ...(r.target ? { target: r.target } : {}), ...(r.details ?? {}) },
      ],
    },
    actor: {
      id: r.actorId ?? "",
      type: r.actorId ? "user" : "anonymous",
      metadata: [{ ...(email ? { email } : {}), ...(ip ? { ip } : {}) }],
      token_type: r.actorId ? "user" : "anonymous",
      ...(r.actorId ? { user_id: r.actorId } : {}),
      ...(email ? { email } : {}),
      ...(ip ? { ip } : {}),
    },
    target: {
      description: r.target ?? r.projectRef ?? orgSlug ?? r.action,
      metadata: { ...(orgSlug ? { org_slug: orgSlug } : {}), ...(r.projectRef ? { project_ref: r.projectRef } : {}) },
    },
  };
}

/**
 * The caller's own audit rows (Studio's account audit page): what they did and their sign-ins,
 * in every organization, between `start` and `end`, newest first, at most `limit`.
 */
export async function listAccountAudit(
  ctx: AuthedContext,
  input: { start?: Date | undefined; end?: Date | undefined; limit?: number | undefined },
): Promise<AuditLogPage> {
  const { start, end } = input;
  if (start && end && start.getTime() > end.getTime()) {
    throw badRequest("iso_timestamp_start must not be after iso_timestamp_end");
  }
  const limit = Math.min(input.limit ?? AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT);
  const rows = await ctx.db
    .select({ ...AUDIT_COLUMNS, orgSlug: organizations.slug })
    .from(auditLog)
    .leftJoin(organizations, eq(organizations.id, auditLog.orgId))
    .where(
      and(
        eq(auditLog.actorId, ctx.actor.userId),
        start ? gte(auditLog.createdAt, start) : undefined,
        end ? lte(auditLog.createdAt, end) : undefined,
      ),
    )
    .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
    .limit(limit);
  return { result: rows.map((r) => auditItem(r, r.orgSlug)), retention_period: AUDIT_LOG_DAYS };
}
