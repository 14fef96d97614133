import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { projectPorts } from "../fleet/scheduling.js";
import { requireReleaseService } from "../projects/release-services.js";
import { projectVariables } from "../secrets/variables.js";
import { callService, reachableProject } from "./target.js";

const REST_TIMEOUT_MS = 15_000;

/**
 * HEAD|GET /platform/projects/{ref}/api/rest: the project's PostgREST root (its OpenAPI document),
 * reached through the gateway's /rest/v1/ on the host, with the service-role key (the gateway
 * wants a key; the document then covers every exposed table). A release without a `rest`
 * service (the `local` one) answers 409 saying so (ADR 0028): there is no REST API to describe,
 * and a 5xx would be retried by Studio and read as an outage.
 */
export async function restRoot(
  ctx: AuthedContext,
  ref: string,
  method: "GET" | "HEAD",
): Promise<{ status: number; body: unknown; contentType: string | undefined }> {
  const target = await reachableProject(ctx, ref, "sql.read");
  requireReleaseService(target.release, "rest", "the REST API and its documentation");
  const ports = await projectPorts(ctx.db, ref);
  if (ports.gateway === undefined) throw new ApiError("unavailable", "This project publishes no API gateway");
  const vars = await projectVariables(ctx.deps, ctx.db, target.project, { bindAddress: target.bindAddress }, ports);
  const key = vars.SERVICE_ROLE_KEY;
  if (!key) throw new ApiError("unavailable", "This project has no service-role key to reach its REST API with");
  const result = await callService(ctx, target, {
    ref,
    service: "gateway",
    method,
    path: "/rest/v1/",
    headers: { apikey: key, authorization: `Bearer ${key}`, accept: "application/openapi+json, application/json" },
    timeoutMs: REST_TIMEOUT_MS,
  });
  if (result.status >= 500) throw new ApiError("bad_gateway", `The project's REST API answered HTTP ${result.status}`);
  return { status: result.status, body: result.body, contentType: result.contentType };
}
