import type { AuthedContext } from "../../deps.js";
import { projectForMember } from "../organizations/access.js";
import { recordAudit } from "./record.js";

/**
 * Record a successful change a member made to one of a project's services (Auth users, Storage,
 * Edge Functions, function secrets) on its organization's audit log. The service holds the change
 * itself; the row says who did what to which target. Never put secret values in `details`.
 */
export async function auditProjectChange(
  ctx: AuthedContext,
  ref: string,
  action: string,
  target: string,
  details?: Record<string, unknown>,
): Promise<void> {
  const { org } = await projectForMember(ctx, ref);
  await recordAudit(ctx.db, ctx.meta, {
    action,
    outcome: "success",
    orgId: org.id,
    projectRef: ref,
    target,
    ...(details ? { details } : {}),
    actor: ctx.actor,
  });
}
