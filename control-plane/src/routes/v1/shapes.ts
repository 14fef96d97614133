import { PROJECT_STATUSES, ROLE_NAMES, roleFromId } from "@supamanager/shared";
import { z } from "zod";
import type { Member } from "../../services/members/members.js";
import { DB_VERSION, POSTGRES_MAJOR, type ProjectView } from "../../services/projects/model.js";
import { endpointsOf } from "../platform/projects/schemas.js";

/**
 * Response shapes of the Management API (`/v1`), from Supabase's OpenAPI document. Deprecated
 * `id` fields carry what the document says replaces them (the slug for organizations, the ref
 * for projects), as the official CLI reads them.
 */

/** OrganizationResponseV1 (list, create). */
export const V1Organization = z.object({ id: z.string(), slug: z.string(), name: z.string() });
export const v1Organization = (o: { slug: string; name: string }) =>
  ({ id: o.slug, slug: o.slug, name: o.name }) satisfies z.input<typeof V1Organization>;

/** V1OrganizationSlugResponse. Every organization is on the Free plan here. */
export const V1OrganizationDetail = z.object({
  id: z.string(),
  name: z.string(),
  plan: z.literal("free"),
  opt_in_tags: z.array(z.string()),
  allowed_release_channels: z.array(z.literal("ga")),
});

/** V1OrganizationMemberResponse. */
export const V1Member = z.object({
  user_id: z.string(),
  user_name: z.string(),
  email: z.string(),
  role_name: z.string(),
  mfa_enabled: z.boolean(),
});

/** `role_name` is the role's display name ("Owner", "Administrator", "Developer", "Read-only"). */
export function v1Member(m: Member): z.input<typeof V1Member> {
  const role = m.role_ids[0] === undefined ? undefined : roleFromId(m.role_ids[0]);
  return {
    user_id: m.gotrue_id,
    user_name: m.username,
    email: m.primary_email ?? "",
    role_name: role ? ROLE_NAMES[role] : "Unknown",
    mfa_enabled: m.mfa_enabled,
  };
}

const Status = z.enum(PROJECT_STATUSES);

/** V1ProjectResponse (create). */
export const V1Project = z.object({
  id: z.string(),
  ref: z.string(),
  organization_id: z.string(),
  organization_slug: z.string(),
  name: z.string(),
  region: z.string(),
  created_at: z.string(),
  status: Status,
});

export function v1Project(p: ProjectView): z.input<typeof V1Project> {
  return {
    id: p.ref,
    ref: p.ref,
    organization_id: p.orgSlug,
    organization_slug: p.orgSlug,
    name: p.name,
    region: p.region,
    created_at: p.createdAt.toISOString(),
    status: p.status,
  };
}

/** V1ProjectWithDatabaseResponse (list, get). */
export const V1ProjectWithDatabase = V1Project.extend({
  database: z.object({
    host: z.string(),
    version: z.string(),
    postgres_engine: z.string(),
    release_channel: z.string(),
  }),
});

export function v1ProjectWithDatabase(
  p: ProjectView,
  dbVersion: string = DB_VERSION,
): z.input<typeof V1ProjectWithDatabase> {
  // The document's version is the bare image version ("15.8.1.085"); the engine its major.
  const version = dbVersion.replace(/^supabase-postgres-/, "");
  return {
    ...v1Project(p),
    database: {
      host: endpointsOf(p).dbHost,
      version,
      postgres_engine: version.split(".")[0] ?? POSTGRES_MAJOR,
      release_channel: "ga",
    },
  };
}

/** V1ProjectRefResponse (update, delete). */
export const V1ProjectRef = z.object({ id: z.number().int(), ref: z.string(), name: z.string() });
export const v1ProjectRef = (p: ProjectView): z.input<typeof V1ProjectRef> => ({ id: p.id, ref: p.ref, name: p.name });
