import { EDGE_FUNCTIONS_SERVICE } from "@supamanager/shared";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { type ProjectRow, projectForMember } from "../organizations/access.js";
import type { Action } from "../permissions/matrix.js";
import { callService, reachableProject } from "../pg-meta/target.js";
import { requireReleaseService } from "../projects/release-services.js";

/**
 * A project's edge runtime as the Edge Functions API sees it (ADR 0032): the Compose service that
 * runs it (a release without one → 409, ADR 0028), and delivery of files to it through the host
 * agent's reserved `edge-functions` rpc, which writes into the functions volume and restarts
 * the runtime.
 */

const NEED_FOR = "Edge Functions";
/** Writing files and restarting the runtime: Docker's restart waits up to 5 s for a clean stop. */
const DELIVERY_TIMEOUT_MS = 60_000;

/** The member's project and the Compose service of its edge runtime (404/403, then 409). */
export async function functionsProject(
  ctx: AuthedContext,
  ref: string,
  action: Action,
): Promise<{ project: ProjectRow; service: string }> {
  const { project } = await projectForMember(ctx, ref, action);
  const release = ctx.deps.releases.get(project.release);
  if (!release)
    throw new ApiError("unavailable", `Project ${ref} runs release ${project.release}, which is not loaded here`);
  return { project, service: requireReleaseService(release, "functions", NEED_FOR) };
}

/**
 * Send one edge-functions request to the project's agent; the project must be active and its
 * host connected (409/503 from reachableProject), and the runtime's container running (409).
 */
export async function deliver(
  ctx: AuthedContext,
  ref: string,
  action: Action,
  request: { method: "PUT" | "DELETE"; path: string; body: Record<string, unknown> },
): Promise<void> {
  const target = await reachableProject(ctx, ref, action);
  const service = requireReleaseService(target.release, "functions", NEED_FOR);
  const result = await callService(ctx, target, {
    ref,
    service: EDGE_FUNCTIONS_SERVICE,
    method: request.method,
    path: request.path,
    headers: {},
    body: { ...request.body, service },
    timeoutMs: DELIVERY_TIMEOUT_MS,
  });
  if (result.status === 200) return;
  const b = result.body as { message?: unknown } | undefined;
  const why = typeof b?.message === "string" ? `: ${b.message.slice(0, 300)}` : "";
  if (result.status === 409) {
    throw new ApiError("conflict", `The project's edge runtime is not running, so it cannot be updated${why}`);
  }
  throw new ApiError(
    "bad_gateway",
    `The project's agent could not update the edge runtime (HTTP ${result.status})${why}`,
  );
}
