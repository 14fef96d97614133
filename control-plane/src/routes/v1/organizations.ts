import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { authed } from "../../lib/context.js";
import { jsonBody, query, shape } from "../../lib/validate.js";
import { listMembers } from "../../services/members/members.js";
import { createOrganization, getOrganization, listOrganizations } from "../../services/organizations/organizations.js";
import { listOrgProjects } from "../../services/projects/list.js";
import { OrgName } from "../platform/organizations/create-organization.js";
import { orgSlug } from "../platform/organizations/params.js";
import { ListProjectsQuery, OrgProjectsResponse, orgProjectItem } from "../platform/projects/schemas.js";
import { V1Member, V1Organization, V1OrganizationDetail, v1Member, v1Organization } from "./shapes.js";

/** CreateOrganizationV1: `{name}` only (the document forbids other fields). */
export const V1CreateOrganizationBody = z.strictObject({ name: OrgName });

/**
 * `/v1/organizations`: the Management API's view of the caller's organizations. Same services,
 * same role checks and tenant scoping as /platform/organizations; only the shapes differ.
 */
export function v1OrganizationRoutes() {
  const app = new Hono<AppEnv>();

  app.get("/", async (c) => {
    const orgs = await listOrganizations(authed(c));
    return c.json(shape(z.array(V1Organization), orgs.map(v1Organization)));
  });

  app.post("/", async (c) => {
    const body = await jsonBody(c, V1CreateOrganizationBody);
    const org = await createOrganization(authed(c), { name: body.name, tier: "tier_free" });
    return c.json(shape(V1Organization, v1Organization(org)), 201);
  });

  app.get("/:slug", async (c) => {
    const org = await getOrganization(authed(c), orgSlug(c));
    return c.json(
      shape(V1OrganizationDetail, {
        id: org.slug,
        name: org.name,
        plan: "free",
        opt_in_tags: [],
        allowed_release_channels: ["ga"],
      }),
    );
  });

  app.get("/:slug/members", async (c) => {
    const members = await listMembers(authed(c), orgSlug(c));
    return c.json(shape(z.array(V1Member), members.map(v1Member)));
  });

  app.get("/:slug/projects", async (c) => {
    const slug = orgSlug(c);
    const q = query(c, ListProjectsQuery);
    const page = await listOrgProjects(authed(c), slug, q);
    return c.json(
      shape(OrgProjectsResponse, {
        pagination: { count: page.count, limit: page.limit, offset: page.offset },
        projects: page.projects.map(orgProjectItem),
      }),
    );
  });

  return app;
}
