import type { Executor } from "../../db/index.js";
import { auditLog } from "../../db/schema.js";
import type { Actor, RequestMeta } from "../../deps.js";

export interface AuditEntry {
  action: string;
  outcome: "success" | "failure";
  orgId?: number | null;
  projectRef?: string | null;
  target?: string | null;
  /** Never put secrets here: audit rows are readable by organization admins. */
  details?: Record<string, unknown>;
  actor?: Pick<Actor, "userId" | "email"> | null;
  /** For failed sign-ins, where there is no actor. */
  actorEmail?: string | null;
}

/** Write one audit row. Call it with the transaction of the change it records. */
export async function recordAudit(db: Executor, meta: RequestMeta, entry: AuditEntry): Promise<void> {
  await db.insert(auditLog).values({
    action: entry.action,
    outcome: entry.outcome,
    orgId: entry.orgId ?? null,
    projectRef: entry.projectRef ?? null,
    target: entry.target ?? null,
    details: entry.details ?? null,
    actorId: entry.actor?.userId ?? null,
    actorEmail: entry.actor?.email ?? entry.actorEmail ?? null,
    ip: meta.ip ?? null,
    userAgent: meta.userAgent ?? null,
    requestId: meta.requestId,
  });
}
