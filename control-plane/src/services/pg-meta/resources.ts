import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { requireMetaRoute } from "./query.js";
import { callService, metaHeaders, reachableProject } from "./target.js";

/** postgres-meta's read endpoints Studio calls through /platform/pg-meta/{ref}/… (proxied 1:1). */
export const META_RESOURCES = [
  "tables",
  "types",
  "views",
  "materialized-views",
  "foreign-tables",
  "policies",
  "publications",
  "triggers",
  "extensions",
  "column-privileges",
] as const;
export type MetaResource = (typeof META_RESOURCES)[number];

/** Catalog reads are quick; a slow one is a stuck database. */
const RESOURCE_TIMEOUT_MS = 30_000;

/**
 * GET one of postgres-meta's list endpoints for project `ref` with the (validated) query string,
 * answering what postgres-meta answered. Its 5xx become 502 (the upstream failed, not us).
 */
export async function getMetaResource(
  ctx: AuthedContext,
  ref: string,
  resource: MetaResource,
  search: URLSearchParams,
  connectionToken?: string,
): Promise<{ status: number; body: unknown }> {
  const target = await reachableProject(ctx, ref, "sql.read", connectionToken);
  const route = requireMetaRoute(target);
  const headers = await metaHeaders(ctx, target, route);
  const qs = search.toString();
  const result = await callService(ctx, target, {
    ref,
    service: route.service,
    method: "GET",
    path: `${route.prefix}/${resource}${qs ? `?${qs}` : ""}`,
    headers,
    timeoutMs: RESOURCE_TIMEOUT_MS,
  });
  if (result.status >= 500) {
    const b = result.body as { error?: unknown; message?: unknown } | undefined;
    const why = typeof b?.error === "string" ? b.error : typeof b?.message === "string" ? b.message : "no detail";
    throw new ApiError("bad_gateway", `postgres-meta failed to list ${resource}: ${why}`);
  }
  if (result.status >= 400) {
    const b = result.body as { error?: unknown; message?: unknown } | undefined;
    const message = typeof b?.message === "string" ? b.message : typeof b?.error === "string" ? b.error : "";
    return { status: result.status, body: { message: message || `postgres-meta answered HTTP ${result.status}` } };
  }
  return { status: result.status, body: result.body ?? [] };
}
