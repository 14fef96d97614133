import { PROJECT_STATUSES, ProjectRef } from "@supamanager/shared";
import { z } from "zod";
import { shape } from "../../../lib/validate.js";
import { PROJECT_SORTS } from "../../../services/projects/list.js";
import {
  DB_VERSION,
  databaseStatus,
  type ProjectListItem,
  type ProjectView,
  placeholderEndpoints,
} from "../../../services/projects/model.js";

/**
 * Where the project answers: its public URL (services/projects/urls.ts: under the projects domain
 * when one is set, else the host's bind address and gateway port) and its database on the host,
 * once it is placed; the `.invalid` placeholders otherwise. `endpoint` is the URL's host (and port).
 */
export function endpointsOf(p: ProjectView): { endpoint: string; restUrl: string; dbHost: string; dbPort?: number } {
  const e = p.endpoints;
  if (!e || e.url === null) return placeholderEndpoints(p.ref);
  return {
    endpoint: new URL(e.url).host,
    restUrl: `${e.url}/rest/v1/`,
    dbHost: e.host,
    ...(e.dbPort !== null ? { dbPort: e.dbPort } : {}),
  };
}

/** Path parameter `:ref`; anything but 20 lowercase letters is simply not found. */
export const RefParam = ProjectRef;

const wholeNumber = (what: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,10}$/, `${what} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${what} must be at least ${min}`).max(max, `${what} must be at most ${max}`));

/**
 * Query of both project lists (Studio's `limit, offset, sort, search, statuses`). `statuses` is a
 * comma-separated list of Studio status names; unknown query keys are ignored.
 */
export const ListProjectsQuery = z.object({
  limit: wholeNumber("limit", 1, 1000).default(100),
  offset: wholeNumber("offset", 0, 2_147_483_647).default(0),
  sort: z.enum(PROJECT_SORTS).default("name_asc"),
  search: z
    .string()
    .max(256, "search must be at most 256 characters")
    .optional()
    .transform((s) => (s === undefined || s.trim() === "" ? undefined : s.trim())),
  statuses: z
    .string()
    .optional()
    .transform((s) =>
      (s ?? "")
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    )
    .pipe(z.array(z.enum(PROJECT_STATUSES)).max(PROJECT_STATUSES.length)),
});
export type ListProjectsQuery = z.output<typeof ListProjectsQuery>;

const Pagination = z.object({ count: z.number(), limit: z.number(), offset: z.number() });

/** An item of GET /platform/organizations/:slug/projects (OrganizationProjectsResponse). */
const OrgProjectItem = z.object({
  ref: z.string(),
  name: z.string(),
  status: z.string(),
  region: z.string(),
  cloud_provider: z.string(),
  inserted_at: z.string(),
  is_branch: z.boolean(),
  databases: z.array(
    z.object({
      identifier: z.string(),
      type: z.literal("PRIMARY"),
      status: z.string(),
      region: z.string(),
      cloud_provider: z.string(),
      infra_compute_size: z.string(),
    }),
  ),
});
export const OrgProjectsResponse = z.object({ pagination: Pagination, projects: z.array(OrgProjectItem) });

export function orgProjectItem(p: ProjectListItem): z.input<typeof OrgProjectItem> {
  return {
    ref: p.ref,
    name: p.name,
    status: p.status,
    region: p.region,
    cloud_provider: p.cloudProvider,
    inserted_at: p.createdAt.toISOString(),
    is_branch: false,
    databases: [
      {
        identifier: p.ref,
        type: "PRIMARY",
        status: databaseStatus(p.status),
        region: p.region,
        cloud_provider: p.cloudProvider,
        infra_compute_size: p.computeSize,
      },
    ],
  };
}

/** Fields every project object we answer shares (ListProjectsPaginatedResponse items and more). */
function common(p: ProjectView) {
  return {
    id: p.id,
    ref: p.ref,
    name: p.name,
    status: p.status,
    organization_id: p.orgId,
    cloud_provider: p.cloudProvider,
    region: p.region,
    inserted_at: p.createdAt.toISOString(),
    infra_compute_size: p.computeSize,
    is_branch_enabled: false,
    is_physical_backups_enabled: false,
    // No billing here: Studio requires the key, and "" is what it gets for an unbilled project.
    subscription_id: "",
  };
}

const CommonFields = {
  id: z.number(),
  ref: z.string(),
  name: z.string(),
  status: z.string(),
  organization_id: z.number(),
  cloud_provider: z.string(),
  region: z.string(),
  inserted_at: z.string(),
  infra_compute_size: z.string(),
  is_branch_enabled: z.boolean(),
  is_physical_backups_enabled: z.boolean(),
  subscription_id: z.string(),
};

/** An item of GET /platform/projects (ListProjectsPaginatedResponse). */
const ListProjectItem = z.object({
  ...CommonFields,
  organization_slug: z.string(),
  preview_branch_refs: z.array(z.string()),
});
export const ListProjectsResponse = z.object({ pagination: Pagination, projects: z.array(ListProjectItem) });

export function listProjectItem(p: ProjectView): z.input<typeof ListProjectItem> {
  return { ...common(p), organization_slug: p.orgSlug, preview_branch_refs: [] };
}

/** POST /platform/projects → 201 (CreateProjectResponse). */
export const CreateProjectResponse = z.object({
  ...CommonFields,
  organization_slug: z.string(),
  preview_branch_refs: z.array(z.string()),
  endpoint: z.string(),
  anon_key: z.string(),
  service_key: z.string(),
});

/** `keys`: the legacy API keys, for a creator whose role may read secrets (empty strings otherwise). */
export function createProjectResponse(
  p: ProjectView,
  keys: { anon: string; serviceRole: string } | null = null,
): z.output<typeof CreateProjectResponse> {
  return shape(CreateProjectResponse, {
    ...listProjectItem(p),
    endpoint: endpointsOf(p).endpoint,
    anon_key: keys?.anon ?? "",
    service_key: keys?.serviceRole ?? "",
  });
}

/** GET /platform/projects/:ref (ProjectDetailResponse). */
export const ProjectDetailResponse = z.object({
  ...CommonFields,
  db_host: z.string(),
  restUrl: z.string(),
  // The opaque token Studio echoes in `x-connection-encrypted` (services/secrets/connection-token.ts);
  // null until the project is placed on a host (Studio keeps polling meanwhile).
  connectionString: z.string().nullable(),
  dbVersion: z.string(),
  /** Port of the project's Postgres on db_host (absent until placed). */
  db_port: z.number().optional(),
  /** Why the project is failed or unhealthy (the agent's error), when it is. */
  status_reason: z.string().optional(),
  /** Why a requested change has not happened yet (e.g. the host is offline), when it has not. */
  pending_reason: z.string().optional(),
});

export function projectDetailResponse(
  p: ProjectView,
  connectionToken: string | null = null,
  dbVersion: string = DB_VERSION,
): z.output<typeof ProjectDetailResponse> {
  const endpoints = endpointsOf(p);
  return shape(ProjectDetailResponse, {
    ...common(p),
    db_host: endpoints.dbHost,
    ...(endpoints.dbPort !== undefined ? { db_port: endpoints.dbPort } : {}),
    restUrl: endpoints.restUrl,
    connectionString: p.hostId !== null ? connectionToken : null,
    dbVersion,
    ...(p.statusReason !== null && p.status !== "REMOVED" ? { status_reason: p.statusReason } : {}),
    ...(p.pendingReason !== null ? { pending_reason: p.pendingReason } : {}),
  });
}

/** PATCH and DELETE answer the short form {id, ref, name} (ProjectRefResponse / RemoveProjectResponse). */
export const ProjectRefResponse = z.object({ id: z.number(), ref: z.string(), name: z.string() });

/** Answer of pause / restore / restart: the short form plus the new status. */
export const LifecycleResponse = z.object({
  id: z.number(),
  ref: z.string(),
  name: z.string(),
  status: z.string(),
  pending_reason: z.string().optional(),
});

export function lifecycleResponse(p: ProjectView): z.output<typeof LifecycleResponse> {
  return shape(LifecycleResponse, {
    id: p.id,
    ref: p.ref,
    name: p.name,
    status: p.status,
    ...(p.pendingReason !== null ? { pending_reason: p.pendingReason } : {}),
  });
}

export function projectRefResponse(p: ProjectView): z.output<typeof ProjectRefResponse> {
  return shape(ProjectRefResponse, { id: p.id, ref: p.ref, name: p.name });
}
