import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { query, shape } from "../../../lib/validate.js";
import { listMemberProjects } from "../../../services/projects/list.js";
import { ListProjectsQuery, ListProjectsResponse, listProjectItem } from "./schemas.js";

/**
 * GET /platform/projects — Studio's paginated (`Version: 2`) list over every organization the
 * caller belongs to. Always paginated: the legacy bare-array answer belongs to older Studios.
 */
export async function listProjectsRoute(c: Context<AppEnv>): Promise<Response> {
  const q = query(c, ListProjectsQuery);
  const page = await listMemberProjects(authed(c), q);
  return c.json(
    shape(ListProjectsResponse, {
      pagination: { count: page.count, limit: page.limit, offset: page.offset },
      projects: page.projects.map(listProjectItem),
    }),
  );
}
