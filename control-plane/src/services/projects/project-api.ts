import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { projectPorts } from "../fleet/scheduling.js";
import type { Action } from "../permissions/matrix.js";
import { callService, reachableProject } from "../pg-meta/target.js";
import { projectVariables } from "../secrets/variables.js";
import { requireReleaseService, type StackService } from "./release-services.js";

/**
 * One call to a project's own API (Auth's admin API, Storage's API) the way a server-side admin
 * client makes it: through the host agent to the project's gateway (`/auth/v1/…`,
 * `/storage/v1/…`), with the project's service-role key. The key is read from the encrypted
 * store for this one request and never leaves the control plane; Studio sees only the answer.
 */

const TIMEOUT_MS = 15_000;

export interface ProjectApiCall {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** The service's own path, e.g. `/admin/users` (the gateway's prefix is put in front). */
  path: string;
  body?: unknown;
  /** Ask for the raw answer bytes (a download): `bytes` is set, `body` is not parsed. */
  binary?: boolean;
}

export interface ProjectApi {
  /** Which stack service answers (its release must run it, else 409). */
  service: StackService;
  /** The gateway's route to it, e.g. `/auth/v1`. */
  prefix: string;
  /** What the caller's role must allow. */
  action: Action;
  /** The feature, for the 409 when the release lacks the service ("managing Auth users"). */
  needFor: string;
}

export interface ProjectApiAnswer {
  status: number;
  body: unknown;
  contentType?: string | undefined;
  /** The answer's raw bytes, for `binary` calls that succeeded. */
  bytes?: Uint8Array;
  /** The project's public URL (what apps call it at), for answers that carry a URL. */
  publicUrl: string;
}

/** Send `call` to the project's `api`; any status comes back (the caller maps errors). */
export async function callProjectApi(
  ctx: AuthedContext,
  ref: string,
  api: ProjectApi,
  call: ProjectApiCall,
): Promise<ProjectApiAnswer> {
  const target = await reachableProject(ctx, ref, api.action);
  requireReleaseService(target.release, api.service, api.needFor);
  requireReleaseService(target.release, "gateway", api.needFor);
  const ports = await projectPorts(ctx.db, ref);
  if (ports.gateway === undefined) throw new ApiError("unavailable", "This project publishes no API gateway");
  const vars = await projectVariables(ctx.deps, ctx.db, target.project, { bindAddress: target.bindAddress }, ports);
  const key = vars.SERVICE_ROLE_KEY;
  if (!key) throw new ApiError("unavailable", "This project has no service-role key to reach its API with");
  const result = await callService(ctx, target, {
    ref,
    service: "gateway",
    method: call.method,
    path: `${api.prefix}${call.path}`,
    headers: { apikey: key, authorization: `Bearer ${key}` },
    ...(call.body !== undefined ? { body: call.body } : {}),
    ...(call.binary ? { resultEncoding: "base64" as const } : {}),
    timeoutMs: TIMEOUT_MS,
  });
  const answer: ProjectApiAnswer = {
    status: result.status,
    body: result.body,
    contentType: result.contentType,
    publicUrl: vars.SUPABASE_PUBLIC_URL ?? "",
  };
  if (call.binary) {
    if (result.bodyEncoding !== "base64") {
      throw new ApiError("unavailable", "The project's host agent is too old to download files: upgrade it");
    }
    const bytes = Uint8Array.from(atob(typeof result.body === "string" ? result.body : ""), (ch) => ch.charCodeAt(0));
    answer.bytes = bytes;
    // An error answer is JSON: give the caller its parsed body.
    if (result.status >= 300) {
      try {
        answer.body = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        answer.body = undefined;
      }
    }
  }
  return answer;
}

/**
 * A project API's error answer → our ApiError: its message (`msg`, `message`, `error_description`
 * or `error`) prefixed with the service's name; its refusal of our own key, or its 5xx, a 502.
 */
export function projectApiError(label: string, status: number, body: unknown): ApiError {
  const b = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const text = [b.msg, b.message, b.error_description, b.error].find(
    (v): v is string => typeof v === "string" && v.length > 0,
  );
  const message = text ? `${label}: ${text.slice(0, 500)}` : `The project's ${label} service answered HTTP ${status}`;
  if (status >= 500) return new ApiError("bad_gateway", message);
  if (status === 404) return new ApiError("not_found", message);
  if (status === 409) return new ApiError("conflict", message);
  if (status === 422) return new ApiError("unprocessable", message);
  if (status === 429) return new ApiError("rate_limited", message);
  if (status === 401 || status === 403) {
    // Our own service-role key was refused: the project's keys and the service disagree.
    return new ApiError("bad_gateway", `The project's ${label} service refused the project's service-role key`);
  }
  return new ApiError("bad_request", message);
}
