import { OrgSlug } from "@supamanager/shared";
import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, query, shapeBuilt } from "../../../lib/validate.js";
import { listOrgProjects as listProjectsOfOrg } from "../../../services/projects/list.js";
import { ListProjectsQuery, OrgProjectsResponse, orgProjectItem } from "../projects/schemas.js";

/** GET /platform/organizations/:slug/projects — one organization's projects, paginated. */
export async function listOrgProjects(c: Context<AppEnv>): Promise<Response> {
  const slug = param(c, "slug", OrgSlug, "Organization");
  const q = query(c, ListProjectsQuery);
  const page = await listProjectsOfOrg(authed(c), slug, q);
  return c.json(
    shapeBuilt(c.get("deps").config.env, OrgProjectsResponse, {
      pagination: { count: page.count, limit: page.limit, offset: page.offset },
      projects: page.projects.map(orgProjectItem),
    }),
  );
}
