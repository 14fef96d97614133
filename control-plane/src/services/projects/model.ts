import { PROJECT_STATUSES, type ProjectStatus } from "@supamanager/shared";
import type { projects } from "../../db/schema.js";
import type { Reachability } from "./urls.js";

export type ProjectRow = typeof projects.$inferSelect;

/** The columns a project's view is made of (lists select only these: no secrets, no health). */
export const PROJECT_VIEW_COLUMNS = [
  "id",
  "ref",
  "name",
  "orgId",
  "region",
  "cloudProvider",
  "status",
  "statusReason",
  "desiredState",
  "specVersion",
  "appliedVersion",
  "computeSize",
  "hostId",
  "release",
  "pausedAt",
  "createdAt",
  "updatedAt",
] as const satisfies readonly (keyof ProjectRow)[];
export type ProjectViewRow = Pick<ProjectRow, (typeof PROJECT_VIEW_COLUMNS)[number]>;

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
  /**
   * Why a requested change has not happened yet (today: the project's host is offline, so the
   * change waits in the database and is applied when the agent reconnects). Null otherwise.
   */
  pendingReason: string | null;
  desiredState: ProjectRow["desiredState"];
  specVersion: number;
  appliedVersion: number;
  computeSize: ComputeSize;
  hostId: string | null;
  release: string;
  pausedAt: Date | null;
  /**
   * Where the project answers, once placed (null → the `.invalid` placeholders). `url` is its
   * public URL (services/projects/urls.ts), null until it has one. `dbViaPooler`: the release
   * publishes no Postgres port, so database connections go through Supavisor's session port,
   * which needs the tenant in the user name (`postgres.<ref>`).
   */
  endpoints: {
    host: string;
    gatewayPort: number | null;
    dbPort: number | null;
    dbViaPooler: boolean;
    url: string | null;
  } | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What a read needs to know about the project's host. */
export interface HostFacts {
  /** Heard from within the offline grace (and not removed). */
  online: boolean;
  bindAddress: string;
  /** How apps reach the host's projects (ADR 0035). */
  reachability: Reachability;
  /** Reserved host ports by release port name. */
  ports: Record<string, number>;
  /** The project's public URL (services/projects/urls.ts), null while it has none. */
  url: string | null;
}

/** Compute sizes a project may ask for; the larger Supabase sizes have no meaning on our hosts. */
export const COMPUTE_SIZES = ["nano", "micro", "small", "medium", "large", "xlarge"] as const;
export type ComputeSize = (typeof COMPUTE_SIZES)[number];
export const DEFAULT_COMPUTE_SIZE: ComputeSize = "nano";

const MiB = 1024 * 1024;
/**
 * The memory a compute size may use on its host: the stack's total mem_limit (split between
 * services by the release's memory shares) and what placement counts against a host's free
 * memory. Documented in docs/fleet.md.
 */
export const COMPUTE_MEMORY_BYTES: Record<ComputeSize, number> = {
  nano: 512 * MiB,
  micro: 1024 * MiB,
  small: 2048 * MiB,
  medium: 4096 * MiB,
  large: 8192 * MiB,
  xlarge: 16384 * MiB,
};

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

/** The supabase/postgres image version Studio is shown for a release on PostgreSQL 17. */
const DB_VERSION_17 = "supabase-postgres-17.6.1.136";

/**
 * What a project's `dbVersion` says, from its release (an upgrade to another major changes it):
 * the release's own supabase/postgres image version where it runs one, else the known image
 * version of its PostgreSQL major (the `local` releases build their own PostgreSQL).
 */
export function dbVersionOf(
  release:
    | { services: Record<string, { image: string }>; database?: { service: string; postgresMajor: number } | undefined }
    | undefined,
): string {
  const db = release?.database;
  if (!release || !db) return DB_VERSION;
  const image = release.services[db.service]?.image ?? "";
  const tag = /(?:^|\/)supabase\/postgres:(\d+\.\d+\.\d+\.\d+)$/.exec(image)?.[1];
  if (tag) return `supabase-postgres-${tag}`;
  return db.postgresMajor >= 17 ? DB_VERSION_17 : DB_VERSION;
}

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

export const isComputeSize = (size: string): size is ComputeSize => SIZE_SET.has(size);

/**
 * The status a reader sees: stored status, except that a project whose host is offline never
 * reads a stale ACTIVE_* — it reads UNKNOWN (computed at read time, never stored).
 */
export function effectiveStatus(stored: ProjectStatus, hostOnline: boolean | undefined): ProjectStatus {
  if (hostOnline === false && (stored === "ACTIVE_HEALTHY" || stored === "ACTIVE_UNHEALTHY")) return "UNKNOWN";
  return stored;
}

export function pendingReasonFor(row: ProjectViewRow, host: HostFacts | undefined): string | null {
  if (!host || host.online || row.status === "REMOVED") return null;
  if (row.appliedVersion >= row.specVersion) return null;
  return "The project's host is offline; the requested change waits and is applied when the host reconnects";
}

/**
 * What a project list shows of each project (Studio's organization page): the fields of
 * orgProjectItem, read as seven columns and the host's liveness instead of a whole view per row.
 */
export type ProjectListItem = Pick<
  ProjectView,
  "ref" | "name" | "status" | "region" | "cloudProvider" | "createdAt" | "computeSize"
>;

/** The columns a ProjectListItem is made of. */
export const PROJECT_LIST_ITEM_COLUMNS = [
  "ref",
  "name",
  "status",
  "region",
  "cloudProvider",
  "createdAt",
  "computeSize",
] as const satisfies readonly (keyof ProjectRow)[];

/** A list row to its item, with the same status and size rules as toView (hostOnline: undefined when unplaced). */
export function toListItem(
  row: Pick<ProjectRow, (typeof PROJECT_LIST_ITEM_COLUMNS)[number]>,
  hostOnline: boolean | undefined,
): ProjectListItem {
  const stored = STATUS_SET.has(row.status) ? (row.status as ProjectStatus) : "UNKNOWN";
  return {
    ref: row.ref,
    name: row.name,
    status: effectiveStatus(stored, hostOnline),
    region: row.region,
    cloudProvider: row.cloudProvider,
    createdAt: row.createdAt,
    computeSize: SIZE_SET.has(row.computeSize) ? (row.computeSize as ComputeSize) : DEFAULT_COMPUTE_SIZE,
  };
}

/** Map a row to its view. A status outside Studio's vocabulary would hang Studio, so it reads UNKNOWN. */
export function toView(row: ProjectViewRow, orgSlug: string, host?: HostFacts): ProjectView {
  const stored = STATUS_SET.has(row.status) ? (row.status as ProjectStatus) : "UNKNOWN";
  return {
    id: row.id,
    ref: row.ref,
    name: row.name,
    orgId: row.orgId,
    orgSlug,
    region: row.region,
    cloudProvider: row.cloudProvider,
    status: effectiveStatus(stored, host?.online),
    statusReason: row.statusReason,
    pendingReason: pendingReasonFor(row, host),
    desiredState: row.desiredState,
    specVersion: row.specVersion,
    appliedVersion: row.appliedVersion,
    computeSize: SIZE_SET.has(row.computeSize) ? (row.computeSize as ComputeSize) : DEFAULT_COMPUTE_SIZE,
    hostId: row.hostId,
    release: row.release,
    pausedAt: row.pausedAt,
    endpoints: host
      ? {
          host: host.bindAddress,
          gatewayPort: host.ports.gateway ?? null,
          dbPort: host.ports.db ?? host.ports["pooler-session"] ?? null,
          dbViaPooler: host.ports.db === undefined && host.ports["pooler-session"] !== undefined,
          url: host.url,
        }
      : null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
