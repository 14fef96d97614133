import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { projectPorts } from "../fleet/scheduling.js";
import { projectForMember } from "../organizations/access.js";
import { callService, reachableProject } from "../pg-meta/target.js";
import { requireReleaseService } from "../projects/release-services.js";
import { projectVariables } from "../secrets/variables.js";

/**
 * Studio's Authentication → Users actions (create, invite, delete, ban, send a recovery e-mail,
 * magic link or OTP, remove MFA factors) as calls to the project's own Auth service (GoTrue's
 * admin API), reached through the host agent and the project's gateway (`/auth/v1/…`) with the
 * project's service-role key. The key is read from the encrypted store for this one request and
 * never leaves the control plane: Studio sees only GoTrue's answer. Listing and searching users is
 * SQL over auth.users through postgres-meta (Studio does that itself).
 */

const GOTRUE_TIMEOUT_MS = 15_000;

export interface GotrueCall {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** GoTrue's own path, e.g. `/admin/users` (the gateway's `/auth/v1` is put in front). */
  path: string;
  body?: Record<string, unknown>;
}

/** Who may manage a project's Auth users: members who may write its data (developer and up). */
const ACTION = "sql.write" as const;

/** One call to the project's GoTrue; GoTrue's 4xx become ours with its message, its 5xx a 502. */
export async function gotrueAdmin(ctx: AuthedContext, ref: string, call: GotrueCall): Promise<unknown> {
  const target = await reachableProject(ctx, ref, ACTION);
  requireReleaseService(target.release, "auth", "managing Auth users");
  requireReleaseService(target.release, "gateway", "managing Auth users");
  const ports = await projectPorts(ctx.db, ref);
  if (ports.gateway === undefined) throw new ApiError("unavailable", "This project publishes no API gateway");
  const vars = await projectVariables(ctx.deps, ctx.db, target.project, { bindAddress: target.bindAddress }, ports);
  const key = vars.SERVICE_ROLE_KEY;
  if (!key) throw new ApiError("unavailable", "This project has no service-role key to reach its Auth service with");
  const result = await callService(ctx, target, {
    ref,
    service: "gateway",
    method: call.method,
    path: `/auth/v1${call.path}`,
    headers: { apikey: key, authorization: `Bearer ${key}` },
    ...(call.body !== undefined ? { body: call.body } : {}),
    timeoutMs: GOTRUE_TIMEOUT_MS,
  });
  if (result.status >= 200 && result.status < 300) return result.body ?? {};
  throw gotrueError(result.status, result.body);
}

/** GoTrue's error body (`msg`, `message`, `error_description` or `error`) → our ApiError. */
export function gotrueError(status: number, body: unknown): ApiError {
  const b = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const text = [b.msg, b.message, b.error_description, b.error].find(
    (v): v is string => typeof v === "string" && v.length > 0,
  );
  const message = text ? `Auth: ${text.slice(0, 500)}` : `The project's Auth service answered HTTP ${status}`;
  if (status >= 500) return new ApiError("bad_gateway", message);
  if (status === 404) return new ApiError("not_found", message);
  if (status === 409) return new ApiError("conflict", message);
  if (status === 422) return new ApiError("unprocessable", message);
  if (status === 429) return new ApiError("rate_limited", message);
  if (status === 401 || status === 403) {
    // Our own service-role key was refused: the project's keys and its Auth disagree.
    return new ApiError("bad_gateway", "The project's Auth service refused the project's service-role key");
  }
  return new ApiError("bad_request", message);
}

/** Record an Auth-user change on the organization's audit log (GoTrue holds the change itself). */
export async function auditAuthUser(
  ctx: AuthedContext,
  ref: string,
  action: string,
  target: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  const { org } = await projectForMember(ctx, ref);
  await recordAudit(ctx.db, ctx.meta, {
    action,
    outcome: "success",
    orgId: org.id,
    projectRef: ref,
    target,
    details,
    actor: ctx.actor,
  });
}
