import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { ApiError } from "../../../errors.js";

/** GET /platform/organizations/:slug/projects — owned by the projects area. */
export async function listOrgProjects(_c: Context<AppEnv>): Promise<Response> {
  throw new ApiError("not_implemented", "not implemented yet");
}
