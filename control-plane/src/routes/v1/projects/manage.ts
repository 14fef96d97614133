import { OrgSlug } from "@supamanager/shared";
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { badRequest } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, shape } from "../../../lib/validate.js";
import { RELEASE_PARTS } from "../../../releases/manifest.js";
import { createProject } from "../../../services/projects/create.js";
import { deleteProject } from "../../../services/projects/delete.js";
import { getProject } from "../../../services/projects/get.js";
import { requestLifecycle } from "../../../services/projects/lifecycle.js";
import { listMemberProjects } from "../../../services/projects/list.js";
import {
  COMPUTE_SIZES,
  DEFAULT_CLOUD_PROVIDER,
  dbVersionOf,
  POSTGRES_MAJOR,
  type ProjectView,
} from "../../../services/projects/model.js";
import { renameProject } from "../../../services/projects/update.js";
import { availableRegionsRoute } from "../../platform/projects/available-regions.js";
import { DbPassword } from "../../platform/projects/create-project.js";
import { RefParam } from "../../platform/projects/schemas.js";
import {
  V1Project,
  V1ProjectRef,
  V1ProjectWithDatabase,
  v1Project,
  v1ProjectRef,
  v1ProjectWithDatabase,
} from "../shapes.js";

const ProjectName = z.string({ error: "name is required" }).trim().min(1, "name must not be empty").max(256);

/**
 * V1CreateProjectBody. The official CLI sends the organization's slug as the deprecated
 * `organization_id` and a `region` code; both spellings are accepted. Regions are the operator's
 * own (the regions of enrolled hosts), so `region` is any enrolled region, not the document's AWS
 * list. Fields with no meaning here (plan, kps_enabled, template_url) are accepted and ignored.
 */
export const V1CreateProjectBody = z.object({
  name: ProjectName,
  db_pass: DbPassword,
  organization_slug: OrgSlug.optional(),
  organization_id: OrgSlug.optional(),
  region: z.string().min(1).max(64).optional(),
  region_selection: z.object({ type: z.enum(["specific", "smartGroup"]), code: z.string().min(1).max(64) }).optional(),
  plan: z.enum(["free", "pro"]).optional(),
  kps_enabled: z.boolean().optional(),
  desired_instance_size: z
    .enum(COMPUTE_SIZES, { error: `desired_instance_size must be one of ${COMPUTE_SIZES.join(", ")}` })
    // Absent → the smallest size the release runs in (createProject).
    .optional(),
  template_url: z.url().max(2048).optional(),
  release_channel: z.literal("ga", { error: "release_channel: only ga is available" }).optional(),
  postgres_engine: z
    .literal(POSTGRES_MAJOR, { error: `postgres_engine: only Postgres ${POSTGRES_MAJOR} is available` })
    .optional(),
  /** SupaManager: the release of the new project (GET /platform/fleet/releases); default: the default release. */
  release: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "release must be a release name (see GET /platform/fleet/releases)")
    .optional(),
  /** SupaManager: the release's optional parts to run (logs, realtime, storage, functions); default: the release's. */
  parts: z
    .array(z.enum(RELEASE_PARTS, { error: `parts must be among ${RELEASE_PARTS.join(", ")}` }))
    .max(4)
    .optional(),
});
type V1CreateProjectBody = z.output<typeof V1CreateProjectBody>;

function organizationOf(body: V1CreateProjectBody): string {
  const { organization_slug: slug, organization_id: id } = body;
  if (slug && id && slug !== id) throw badRequest("organization_slug and organization_id name different organizations");
  const org = slug ?? id;
  if (!org) throw badRequest("body.organization_slug: Required");
  return org;
}

/** A specific region, or undefined for "wherever the best host is" (a smart group or nothing). */
function regionOf(body: V1CreateProjectBody): string | undefined {
  if (body.region !== undefined && body.region_selection !== undefined) {
    throw badRequest("Only one of region or region_selection may be given");
  }
  if (body.region_selection) return body.region_selection.type === "specific" ? body.region_selection.code : undefined;
  return body.region;
}

export const V1UpdateProjectBody = z.object({ name: ProjectName });

const refOf = (c: Parameters<typeof param>[0]) => param(c, "ref", RefParam, "Project");

/** The whole list in one array (the document's GET /v1/projects is not paginated); read in pages. */
async function allMemberProjects(ctx: ReturnType<typeof authed>): Promise<ProjectView[]> {
  const out: ProjectView[] = [];
  const limit = 500;
  for (let offset = 0; ; offset += limit) {
    const page = await listMemberProjects(ctx, { limit, offset, sort: "created_asc", statuses: [] });
    out.push(...page.projects);
    if (page.projects.length < limit || out.length >= page.count) return out;
  }
}

/**
 * `/v1/projects`: list, create, get, rename, delete, pause, restore, restart and the available
 * regions. Same services (and so the same role checks and tenant scoping) as /platform/projects.
 */
export function v1ProjectManagementRoutes() {
  const app = new Hono<AppEnv>();

  app.get("/", async (c) => {
    const projects = await allMemberProjects(authed(c));
    const releases = c.get("deps").releases;
    return c.json(
      shape(
        z.array(V1ProjectWithDatabase),
        projects.map((p) => v1ProjectWithDatabase(p, dbVersionOf(releases.get(p.release)))),
      ),
    );
  });

  app.post("/", async (c) => {
    const body = await jsonBody(c, V1CreateProjectBody);
    const project = await createProject(authed(c), {
      name: body.name,
      organizationSlug: organizationOf(body),
      dbPass: body.db_pass,
      cloudProvider: DEFAULT_CLOUD_PROVIDER,
      region: regionOf(body),
      computeSize: body.desired_instance_size,
      release: body.release,
      parts: body.parts,
    });
    return c.json(shape(V1Project, v1Project(project)), 201);
  });

  // Before /:ref, which would otherwise take "available-regions" for a (malformed) ref.
  app.get("/available-regions", availableRegionsRoute);

  app.get("/:ref", async (c) => {
    const project = await getProject(authed(c), refOf(c));
    const version = dbVersionOf(c.get("deps").releases.get(project.release));
    return c.json(shape(V1ProjectWithDatabase, v1ProjectWithDatabase(project, version)));
  });

  app.patch("/:ref", async (c) => {
    const ref = refOf(c);
    const body = await jsonBody(c, V1UpdateProjectBody);
    return c.json(shape(V1ProjectRef, v1ProjectRef(await renameProject(authed(c), ref, body.name))));
  });

  app.delete("/:ref", async (c) => {
    const project = await deleteProject(authed(c), refOf(c));
    return c.json(shape(V1ProjectRef, v1ProjectRef(project)));
  });

  // The document declares these 200s without a body; we answer the project with its new status.
  for (const request of ["pause", "restore", "restart"] as const) {
    app.post(`/:ref/${request}`, async (c) => {
      const ref = refOf(c);
      await jsonBody(c, z.looseObject({}));
      return c.json(shape(V1Project, v1Project(await requestLifecycle(authed(c), ref, request))));
    });
  }

  return app;
}
