import type { OrgRole } from "@supamanager/shared";
import type { AuthedContext } from "../../deps.js";
import { projectForMember } from "../organizations/access.js";
import { hostFactsFor } from "../projects/host-facts.js";
import { type ProjectView, toView } from "../projects/model.js";
import { connectionToken } from "./connection-token.js";
import { loadProjectSecrets } from "./store.js";

/** A project as its data endpoints (settings, databases, pooler) see it, with the caller's role. */
export interface ProjectData {
  view: ProjectView;
  role: OrgRole;
  /** The opaque token Studio echoes in `x-connection-encrypted` (connection-token.ts). */
  connectionToken: string;
  /** The project's reserved host ports by release port name (empty until placed). */
  ports: Record<string, number>;
  /** Services of the project's release. */
  releaseServices: string[];
}

/** The project `ref` for any member (404 otherwise), with its connection token. */
export async function projectData(ctx: AuthedContext, ref: string): Promise<ProjectData> {
  const { project, org, role } = await projectForMember(ctx, ref, "projects.read");
  const host = await hostFactsFor(ctx, project);
  return {
    view: toView(project, org.slug, host),
    role,
    connectionToken: await connectionToken(ctx.deps, project.ref),
    ports: host?.ports ?? {},
    releaseServices: Object.keys(ctx.deps.releases.get(project.release)?.services ?? {}),
  };
}

/**
 * Roles that see the JWT secret on the JWT settings page. Narrower than projects.read_secrets
 * (developers read the API keys but not the secret every key is signed with).
 */
const JWT_SECRET_ROLES: ReadonlySet<OrgRole> = new Set<OrgRole>(["owner", "administrator"]);

/** PostgREST settings of the project; the JWT secret only for owners and administrators. */
export async function postgrestConfig(
  ctx: AuthedContext,
  ref: string,
): Promise<{ view: ProjectView; jwtSecret: string | undefined }> {
  const { project, org, role } = await projectForMember(ctx, ref, "projects.read");
  const jwtSecret = JWT_SECRET_ROLES.has(role)
    ? (await loadProjectSecrets(ctx.db, ctx.deps, project.ref)).JWT_SECRET
    : undefined;
  return { view: toView(project, org.slug), jwtSecret };
}

/** The services Studio asks about in GET /v1/projects/{ref}/health. */
export const HEALTH_SERVICES = [
  "auth",
  "db",
  "db_postgres_user",
  "pooler",
  "realtime",
  "rest",
  "storage",
  "pg_bouncer",
] as const;
export type HealthService = (typeof HEALTH_SERVICES)[number];

/** Which release services answer for each of Studio's names (the first that the release has). */
const RELEASE_SERVICES: Record<HealthService, string[]> = {
  auth: ["auth"],
  db: ["db"],
  db_postgres_user: ["db"],
  pooler: ["supavisor", "pooler"],
  realtime: ["realtime"],
  rest: ["rest"],
  storage: ["storage"],
  pg_bouncer: ["pgbouncer"],
};

export interface ServiceHealth {
  name: HealthService;
  healthy: boolean;
  status: "COMING_UP" | "ACTIVE_HEALTHY" | "UNHEALTHY";
  error?: string;
}

/**
 * Per-service health from what the project's agent last reported (projects.health). Never
 * stale: a host that is offline (or a project not placed) answers unhealthy for every service
 * with the reason, whatever the last report said. A service the project's release does not run
 * is reported unhealthy and says so. See docs/secrets.md ("Studio data endpoints").
 */
export async function projectHealth(
  ctx: AuthedContext,
  ref: string,
  services: readonly HealthService[],
): Promise<ServiceHealth[]> {
  const { project } = await projectForMember(ctx, ref, "projects.read");
  const host = await hostFactsFor(ctx, project);
  const manifest = ctx.deps.releases.get(project.release);
  const released = new Set(Object.keys(manifest?.services ?? {}));
  const unhealthy = (name: HealthService, error: string): ServiceHealth => ({
    name,
    healthy: false,
    status: "UNHEALTHY",
    error,
  });
  return services.map((name): ServiceHealth => {
    if (!host) return unhealthy(name, "The project is not placed on a host yet");
    if (!host.online) return unhealthy(name, "The project's host is offline: health unknown");
    if (project.desiredState !== "running" || project.status === "INACTIVE" || project.status === "PAUSING") {
      return unhealthy(name, "The project is paused");
    }
    const service = RELEASE_SERVICES[name].find((s) => released.has(s));
    if (service === undefined) return unhealthy(name, `Not part of this project's release (${project.release})`);
    const report = project.health?.find((s) => s.name === service);
    if (!report) {
      return project.status === "COMING_UP" || project.health === null
        ? { name, healthy: false, status: "COMING_UP" }
        : unhealthy(name, `${service} has not reported its state`);
    }
    if (report.state === "running" && (report.health === "healthy" || report.health === "none")) {
      return { name, healthy: true, status: "ACTIVE_HEALTHY" };
    }
    if (report.state === "running" && report.health === "starting")
      return { name, healthy: false, status: "COMING_UP" };
    return unhealthy(name, `${service} is ${report.state}${report.health !== "none" ? ` (${report.health})` : ""}`);
  });
}
