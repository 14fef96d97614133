import type { AuthedContext } from "../../deps.js";
import { auditProjectChange } from "../audit/project-change.js";
import { callProjectApi, projectApiError } from "../projects/project-api.js";

/**
 * Studio's Authentication → Users actions (create, invite, delete, ban, send a recovery e-mail,
 * magic link or OTP, remove MFA factors) as calls to the project's own Auth service (GoTrue's
 * admin API), reached through the host agent and the project's gateway (`/auth/v1/…`) with the
 * project's service-role key. The key is read from the encrypted store for this one request and
 * never leaves the control plane: Studio sees only GoTrue's answer. Listing and searching users is
 * SQL over auth.users through postgres-meta (Studio does that itself).
 */

const AUTH = {
  service: "auth",
  prefix: "/auth/v1",
  // Who may manage a project's Auth users: members who may write its data (developer and up).
  action: "sql.write",
  needFor: "managing Auth users",
} as const;

export interface GotrueCall {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** GoTrue's own path, e.g. `/admin/users` (the gateway's `/auth/v1` is put in front). */
  path: string;
  body?: Record<string, unknown>;
}

/** One call to the project's GoTrue; GoTrue's 4xx become ours with its message, its 5xx a 502. */
export async function gotrueAdmin(ctx: AuthedContext, ref: string, call: GotrueCall): Promise<unknown> {
  const result = await callProjectApi(ctx, ref, AUTH, call);
  if (result.status >= 200 && result.status < 300) return result.body ?? {};
  throw projectApiError("Auth", result.status, result.body);
}

/** Record an Auth-user change on the organization's audit log (GoTrue holds the change itself). */
export const auditAuthUser = auditProjectChange;
