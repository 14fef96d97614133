import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param } from "../../../lib/validate.js";
import { restRoot } from "../../../services/pg-meta/rest.js";
import { RefParam } from "./schemas.js";

/**
 * HEAD|GET /platform/projects/:ref/api/rest — the project's PostgREST root through its host agent:
 * HEAD answers the upstream status (2xx when the REST API answers), GET its OpenAPI document.
 * (Hono routes HEAD to this GET handler; the method is read from the request.)
 */
export async function apiRestRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = param(c, "ref", RefParam, "Project");
  const method = c.req.method === "HEAD" ? "HEAD" : "GET";
  const r = await restRoot(authed(c), ref, method);
  if (method === "HEAD") return c.body(null, r.status as 200);
  if (typeof r.body === "string" || r.body === undefined) {
    return c.body(r.body ?? "", r.status as 200, { "content-type": r.contentType ?? "text/plain; charset=utf-8" });
  }
  return c.json(r.body as object, r.status as 200);
}
