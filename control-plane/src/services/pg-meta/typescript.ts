import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { requireMetaRoute } from "./query.js";
import { callService, metaHeaders, reachableProject } from "./target.js";

/** Generating types reads the whole catalog and formats the result: allow it a while. */
const GENERATE_TIMEOUT_MS = 60_000;

export interface TypescriptInput {
  /** Schemas to describe (postgres-meta's `included_schemas`), e.g. ["public"]. */
  includedSchemas: string[];
}

/**
 * GET /v1/projects/{ref}/types/typescript: the TypeScript types of the project's schemas, generated
 * by the project's own postgres-meta (`GET /generators/typescript`) over the host agent. Every
 * member who may read SQL may generate them; read_only members through the read-only role.
 */
export async function generateTypescript(
  ctx: AuthedContext,
  ref: string,
  input: TypescriptInput,
): Promise<{ types: string }> {
  const target = await reachableProject(ctx, ref, "sql.read");
  const route = requireMetaRoute(target);
  const headers = await metaHeaders(ctx, target, route);
  const params = new URLSearchParams({ included_schemas: input.includedSchemas.join(",") });
  const result = await callService(ctx, target, {
    ref,
    service: route.service,
    method: "GET",
    path: `${route.prefix}/generators/typescript?${params}`,
    headers,
    timeoutMs: GENERATE_TIMEOUT_MS,
  });
  const b = result.body as { error?: unknown; message?: unknown } | string | undefined;
  const why =
    typeof b === "string"
      ? b
      : typeof b?.error === "string"
        ? b.error
        : typeof b?.message === "string"
          ? b.message
          : "";
  if (result.status === 503) {
    throw new ApiError("unavailable", `postgres-meta is busy generating types; try again (${why || "no detail"})`);
  }
  if (result.status >= 400) {
    throw new ApiError("bad_gateway", `postgres-meta failed to generate types: ${why || `HTTP ${result.status}`}`);
  }
  if (typeof result.body !== "string") {
    throw new ApiError("bad_gateway", "postgres-meta answered something other than TypeScript source");
  }
  return { types: result.body };
}
