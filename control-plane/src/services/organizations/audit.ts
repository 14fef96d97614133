import { and, desc, eq, gte, lte } from "drizzle-orm";
import { auditLog } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest } from "../../errors.js";
import { orgForMember } from "./access.js";
import { AUDIT_LOG_DAYS } from "./billing.js";

/** Most rows one request returns; Studio asks for a time window, newest first. */
export const AUDIT_MAX_LIMIT = 1000;
export const AUDIT_DEFAULT_LIMIT = 500;

/** One item of Studio's audit log page (the V2 shape; `timestamp` is in microseconds). */
export interface AuditLogItem {
  organization_slug: string;
  project_ref?: string;
  request_id: string;
  action: { name: string; method: string; route: string; status: number; metadata: Record<string, unknown> };
  actor: { token_type: string; user_id?: string; email?: string; ip?: string };
  timestamp: number;
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
    .select({
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
    })
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
  return {
    result: rows.map((r) => ({
      organization_slug: org.slug,
      ...(r.projectRef ? { project_ref: r.projectRef } : {}),
      request_id: r.requestId ?? "",
      action: {
        name: r.action,
        // Audit rows record what changed, not the HTTP call that changed it.
        method: "",
        route: "",
        status: r.outcome === "success" ? 200 : 400,
        metadata: { outcome: r.outcome, target: r.target, ...(r.details ?? {}) },
      },
      actor: {
        token_type: r.actorId ? "user" : "anonymous",
        ...(r.actorId ? { user_id: r.actorId } : {}),
        ...(r.actorEmail ? { email: r.actorEmail } : {}),
        ...(r.ip ? { ip: r.ip } : {}),
      },
      timestamp: r.createdAt.getTime() * 1000,
    })),
    retention_period: AUDIT_LOG_DAYS,
  };
}
