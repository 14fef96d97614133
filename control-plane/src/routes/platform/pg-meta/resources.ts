import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { ApiError } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { param } from "../../../lib/validate.js";
import { getMetaResource, type MetaResource } from "../../../services/pg-meta/resources.js";
import { RefParam } from "../projects/schemas.js";

const MAX_PARAMS = 20;
const PARAM_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const MAX_VALUE = 4000;

/**
 * The query string, passed through to postgres-meta after checking its shape: at most 20
 * parameters, snake_case names, values of at most 4000 characters. postgres-meta validates the
 * values themselves (and answers 400 for a bad one).
 */
export function passThroughQuery(url: string): URLSearchParams {
  const given = new URL(url).searchParams;
  const out = new URLSearchParams();
  let n = 0;
  for (const [name, value] of given) {
    if (++n > MAX_PARAMS) throw new ApiError("validation_failed", `query: at most ${MAX_PARAMS} parameters`);
    if (!PARAM_NAME.test(name))
      throw new ApiError("validation_failed", `query: invalid parameter name ${JSON.stringify(name.slice(0, 64))}`);
    if (value.length > MAX_VALUE)
      throw new ApiError("validation_failed", `query.${name}: at most ${MAX_VALUE} characters`);
    out.append(name, value);
  }
  return out;
}

/** GET /platform/pg-meta/:ref/<resource> — proxied 1:1 to the project's postgres-meta. */
export function metaResourceRoute(resource: MetaResource) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const ref = param(c, "ref", RefParam, "Project");
    const search = passThroughQuery(c.req.url);
    const r = await getMetaResource(authed(c), ref, resource, search, c.req.header("x-connection-encrypted"));
    return c.json(r.body as object, r.status as 200);
  };
}
