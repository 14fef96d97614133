import type { OrgRole, RpcResult } from "@supamanager/shared";
import type { AuthedContext } from "../../deps.js";
import { ApiError, conflict, notFound } from "../../errors.js";
import type { ReleaseManifest } from "../../releases/manifest.js";
import { hostOffline, type RpcRequest } from "../fleet/hub.js";
import type { ProjectRow } from "../organizations/access.js";
import { type Action, roleCan } from "../permissions/matrix.js";
import { projectWithHostForMember } from "../projects/host-facts.js";
import { resolveConnectionToken } from "../secrets/connection-token.js";
import { loadProjectSecrets } from "../secrets/store.js";
import { connectionUrl, encryptForPgMeta } from "./connection.js";

/**
 * Reaching a project's services through its host agent (docs/data-plane.md): who may, when the
 * project can answer, which endpoint of the stack serves a service, and how a read_only member's
 * SQL is confined to the read-only database role.
 */

/** The login role read_only members' SQL runs as (created by the release's init SQL). */
export const READ_ONLY_ROLE = "supamanager_read_only";

/** A project a member may reach, with its host and release. */
export interface ReachableProject {
  project: ProjectRow;
  role: OrgRole;
  hostId: string;
  bindAddress: string;
  release: ReleaseManifest;
}

const ACTIVE = new Set(["ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY"]);

/** Why a project in `status` cannot answer, in words Studio can show. */
function notActive(ref: string, status: string): ApiError {
  const why: Record<string, string> = {
    INACTIVE: "it is paused; restore it first",
    PAUSING: "it is being paused",
    COMING_UP: "it is still starting",
    RESTORING: "it is being restored",
    UPGRADING: "it is being upgraded to another release",
    RESTARTING: "it is restarting",
    GOING_DOWN: "it is being deleted",
    INIT_FAILED: "it failed to start",
    // A failed restore leaves the old data serving on the database port (ADR 0015); say how back.
    RESTORE_FAILED: "a restore failed and the database kept its data: restore a backup again, or press Restore",
  };
  return conflict(
    `Project ${ref} is ${status}: its database can be reached only while the project is active (${why[status] ?? "try again once it is ACTIVE_HEALTHY"})`,
  );
}

/**
 * The project `ref` as the caller may reach it: member with `action` (404 / 403), an accepted
 * `x-connection-encrypted` token when given (one that stands for another project → 404), an
 * ACTIVE_* status (409), a host whose agent is connected to this process (503).
 */
export async function reachableProject(
  ctx: AuthedContext,
  ref: string,
  action: Action,
  connectionToken?: string,
): Promise<ReachableProject> {
  // One statement: membership, project and its host (ADR 0033).
  const { project, role, hostRow: host } = await projectWithHostForMember(ctx, ref, action, { ports: false });
  if (connectionToken !== undefined && connectionToken.trim() !== "") {
    const tokenRef = await resolveConnectionToken(ctx, connectionToken);
    if (tokenRef !== ref) throw notFound(`Project ${ref} not found`);
  }
  if (!ACTIVE.has(project.status)) throw notActive(ref, project.status);
  const release = ctx.deps.releases.get(project.release);
  if (!release) {
    throw new ApiError("unavailable", `Project ${ref} runs release ${project.release}, which is not loaded here`);
  }
  if (!project.hostId || !host) throw hostOffline();
  if (host.removedAt || !(await ctx.deps.hub.isConnected(host.id))) {
    throw hostOffline({
      name: host.name,
      lastSeenAt: host.lastSeenAt,
      removed: host.removedAt !== null,
      now: ctx.deps.clock.now(),
    });
  }
  return { project, role, hostId: host.id, bindAddress: host.bindAddress, release };
}

/** Does the role run its SQL as the read-only database role? (read_only: sql.read without sql.write) */
export const isReadOnlyRole = (role: OrgRole) => roleCan(role, "sql.read") && !roleCan(role, "sql.write");

/** How postgres-meta is reached for a project: which endpoint and the path prefix in front of its API. */
export interface MetaRoute {
  service: string;
  prefix: string;
  /** Keys the project's gateway wants on the route (production: Kong's /pg/ is service-role only). */
  needsServiceKey: boolean;
}

/**
 * postgres-meta's route in a release: the gateway's `/pg` route with the service-role key (both
 * the local release's nginx and Kong refuse /pg/ without it; ADR 0023). A release that publishes
 * postgres-meta's own port (`meta`) is reached there instead — none built in does: an open
 * postgres-meta port is superuser SQL for whoever reaches the host.
 */
export function metaRoute(release: ReleaseManifest): MetaRoute | undefined {
  const ports = new Set(Object.values(release.services).flatMap((s) => s.ports.map((p) => p.name)));
  if (ports.has("meta")) return { service: "meta", prefix: "", needsServiceKey: false };
  if (release.services.meta && ports.has("gateway"))
    return { service: "gateway", prefix: "/pg", needsServiceKey: true };
  return undefined;
}

/** application_name of read-only connections: this prefix and the request's own tag. */
export const READ_ONLY_APPLICATION_PREFIX = "supamanager-ro-";

/**
 * The settings every read-only connection starts with (startup options: they outrank whatever the
 * role stored for itself with ALTER ROLE … SET). A statement may still SET them for its own
 * session, which ends with the request; the control plane then ends the backend too
 * (query.ts, endReadOnlyBackends).
 */
export function readOnlySettings(statementTimeoutSeconds: number): Record<string, string> {
  return {
    default_transaction_read_only: "on",
    statement_timeout: `${statementTimeoutSeconds}s`,
    lock_timeout: `${statementTimeoutSeconds}s`,
    idle_in_transaction_session_timeout: `${statementTimeoutSeconds}s`,
    idle_session_timeout: `${statementTimeoutSeconds + 10}s`,
    // A query whose client went away stops at the next check instead of running on.
    client_connection_check_interval: "1s",
  };
}

/**
 * Headers for a request to postgres-meta on behalf of a member with `role`: for read_only members,
 * a per-request connection as the read-only role (`x-connection-encrypted`, encrypted with the
 * project's PG_META_CRYPTO_KEY) with its limits as startup options and a per-request
 * application_name (`x-pg-application-name`), so PostgreSQL itself refuses their writes and the
 * control plane can find the backend again; for gateway routes, the service-role key. Secrets are
 * decrypted here only for this request and never logged.
 */
export async function metaHeaders(
  ctx: AuthedContext,
  target: ReachableProject,
  route: MetaRoute,
  opts: { readOnly?: boolean; asService?: boolean } = {},
) {
  const headers: Record<string, string> = { "x-pg-application-name": "supamanager" };
  // `opts.readOnly` forces the read-only role for any member (the v1 read-only query path);
  // `opts.asService` is the control plane's own housekeeping (never a member's SQL).
  const readOnly = opts.asService !== true && (opts.readOnly === true || isReadOnlyRole(target.role));
  if (!readOnly && !route.needsServiceKey) return headers;
  // Only stored secrets are needed here (one statement), not every variable of the project.
  const vars = await loadProjectSecrets(ctx.db, ctx.deps, target.project.ref);
  if (route.needsServiceKey) {
    const key = vars.SERVICE_ROLE_KEY;
    if (!key) throw new ApiError("unavailable", "This project has no service-role key to reach postgres-meta with");
    headers.apikey = key;
    headers.authorization = `Bearer ${key}`;
  }
  if (readOnly) {
    const password = vars.READ_ONLY_PASSWORD;
    const cryptoKey = vars.PG_META_CRYPTO_KEY;
    // Never fall back to postgres-meta's own (superuser) connection for a read_only member.
    if (!password || !cryptoKey) {
      throw new ApiError("unavailable", "Read-only database access is not set up for this project");
    }
    const env = target.release.services.meta?.environment ?? {};
    const literal = (v: string | undefined, fallback: string) => (v && !v.includes("${") ? v : fallback);
    const url = connectionUrl(READ_ONLY_ROLE, password, {
      host: literal(env.PG_META_DB_HOST, "db"),
      port: literal(env.PG_META_DB_PORT, "5432"),
      database: literal(env.PG_META_DB_NAME, "postgres"),
      sslmode: literal(env.PG_META_DB_SSL_MODE, "disable"),
      settings: readOnlySettings(ctx.deps.config.sql.statementTimeoutSeconds),
    });
    headers["x-connection-encrypted"] = encryptForPgMeta(url, cryptoKey);
    headers["x-pg-application-name"] = `${READ_ONLY_APPLICATION_PREFIX}${crypto.randomUUID()}`;
  }
  return headers;
}

/** Send an RPC to the project's host and turn transport failures into clear API errors. */
export async function callService(ctx: AuthedContext, target: ReachableProject, request: RpcRequest) {
  const result = await ctx.deps.hub.rpc(target.hostId, request);
  if (result.error !== undefined || result.status === undefined) {
    const what = request.service === "meta" || request.path.startsWith("/pg/") ? "postgres-meta" : request.service;
    throw agentError(what, result);
  }
  return result as RpcResult & { status: number };
}

function agentError(what: string, r: RpcResult): ApiError {
  const detail = r.error ?? "no answer";
  switch (r.code) {
    case "timeout":
      return new ApiError("gateway_timeout", `The project's ${what} did not answer in time (${detail})`);
    case "too_large":
      return new ApiError("payload_too_large", `The ${detail.replace(/^result/, "query result")}`);
    case "unreachable":
      return new ApiError("unavailable", `The project's ${what} is not reachable: ${detail}`);
    case "refused":
      return new ApiError("unavailable", `The project's host cannot reach ${what}: ${detail}`);
    default:
      return new ApiError("bad_gateway", `The project's host could not forward the request: ${detail}`);
  }
}
