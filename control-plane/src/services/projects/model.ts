import { PROJECT_STATUSES, type ProjectStatus } from "@supamanager/shared";
import type { projects } from "../../db/schema.js";

export type ProjectRow = typeof projects.$inferSelect;

/** A project as services hand it to routes: the row's public facts plus its organization's slug. */
export interface ProjectView {
  id: number;
  ref: string;
  name: string;
  orgId: number;
  orgSlug: string;
  region: string;
  cloudProvider: string;
  status: ProjectStatus;
  statusReason: string | null;
  desiredState: ProjectRow["desiredState"];
  specVersion: number;
  computeSize: ComputeSize;
  createdAt: Date;
  updatedAt: Date;
}

/** Compute sizes a project may ask for; the larger Supabase sizes have no meaning on our hosts. */
export const COMPUTE_SIZES = ["nano", "micro", "small", "medium", "large", "xlarge"] as const;
export type ComputeSize = (typeof COMPUTE_SIZES)[number];
export const DEFAULT_COMPUTE_SIZE: ComputeSize = "nano";

/**
 * The providers Studio's create form knows. We run every project on our own hosts whatever the
 * value, but Studio looks up icons and region labels by provider, so we echo what it sent and
 * default to "AWS", the provider every Studio screen handles.
 */
export const CLOUD_PROVIDERS = ["AWS", "FLY", "AWS_K8S", "AWS_NIMBUS"] as const;
export const DEFAULT_CLOUD_PROVIDER = "AWS";

/**
 * The Postgres major version every project runs today (the stack pins supabase/postgres 15.8).
 * `dbVersion` uses Supabase's `supabase-postgres-<image version>` form, which Studio parses.
 */
export const POSTGRES_MAJOR = "15";
export const DB_VERSION = "supabase-postgres-15.8.1.085";

/**
 * Until the fleet places a project on a host there is no address to give. Studio parses these
 * values as URLs/host names, so rather than an empty string we answer names under the reserved
 * `.invalid` TLD (RFC 6761): well-formed, guaranteed never to resolve, and obviously not real.
 * The fleet work replaces this with the host's gateway address.
 */
export function placeholderEndpoints(ref: string): { endpoint: string; restUrl: string; dbHost: string } {
  const host = `${ref}.pending.invalid`;
  return { endpoint: host, restUrl: `https://${host}/rest/v1/`, dbHost: `db.${host}` };
}

/**
 * `databases[].status` in Studio's org project list has a narrower vocabulary than the project's
 * status. Statuses it lacks (pausing, paused, failed pause/restore, upgrading) say nothing
 * reliable about the database itself, so they read UNKNOWN.
 */
const DATABASE_STATUSES = new Set<string>([
  "ACTIVE_HEALTHY",
  "ACTIVE_UNHEALTHY",
  "COMING_UP",
  "GOING_DOWN",
  "INIT_FAILED",
  "REMOVED",
  "RESTORING",
  "UNKNOWN",
  "RESTARTING",
  "RESIZING",
]);
export function databaseStatus(status: ProjectStatus): string {
  return DATABASE_STATUSES.has(status) ? status : "UNKNOWN";
}

/** Failed states, where `status_reason` explains what went wrong. */
export function isFailed(status: ProjectStatus): boolean {
  return status === "INIT_FAILED" || status === "PAUSE_FAILED" || status === "RESTORE_FAILED";
}

/** AAD binding a project's encrypted database password to its ref. */
export const dbPassAad = (ref: string) => `project:${ref}:db_pass`;

const STATUS_SET = new Set<string>(PROJECT_STATUSES);
const SIZE_SET = new Set<string>(COMPUTE_SIZES);

/** Map a row to its view. A status outside Studio's vocabulary would hang Studio, so it reads UNKNOWN. */
export function toView(row: ProjectRow, orgSlug: string): ProjectView {
  return {
    id: row.id,
    ref: row.ref,
    name: row.name,
    orgId: row.orgId,
    orgSlug,
    region: row.region,
    cloudProvider: row.cloudProvider,
    status: STATUS_SET.has(row.status) ? (row.status as ProjectStatus) : "UNKNOWN",
    statusReason: row.statusReason,
    desiredState: row.desiredState,
    specVersion: row.specVersion,
    computeSize: SIZE_SET.has(row.computeSize) ? (row.computeSize as ComputeSize) : DEFAULT_COMPUTE_SIZE,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
