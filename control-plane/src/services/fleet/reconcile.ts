import {
  type Applied,
  type Apply,
  type DesiredState,
  type Health,
  PROTOCOL_VERSION,
  type ProjectStatus,
} from "@supamanager/shared";
import { and, eq } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { projects } from "../../db/schema.js";
import type { AppDeps } from "../../deps.js";
import { computeLimits, effectiveParts, runningServices } from "../../releases/compute.js";
import { renderStack } from "../../releases/render.js";
import { isComputeSize, type ProjectRow } from "../projects/model.js";
import { stampUrlDomains } from "../projects/url-domains.js";
import type { Reachability } from "../projects/urls.js";
import { projectVariables } from "../secrets/variables.js";
import { projectPorts, releasePorts } from "./scheduling.js";

/**
 * Desired-state reconciliation, control-plane side (ADR 0008). Pure decisions (what an outcome
 * or a health report does to a project's status) are separate from the I/O, so they can be
 * tested exhaustively and reused by any runtime that holds agent sockets.
 */

type Patch = Partial<Pick<ProjectRow, "status" | "statusReason" | "appliedVersion" | "pausedAt">>;

export interface Outcome {
  version: number;
  desiredState: DesiredState;
  ok: boolean;
  error?: string | undefined;
}

/** A service's health as stored (jsonb) or received. */
type ServiceReport = { name: string; state: string; health: string };

function isServiceHealthy(s: ServiceReport): boolean {
  return s.state === "running" && (s.health === "healthy" || s.health === "none");
}

/** Every required service is present and healthy (a service without a health check counts once running). */
export function requiredHealthy(services: readonly ServiceReport[] | null, required: readonly string[]): boolean {
  if (!services || services.length === 0) return false;
  const names = required.length > 0 ? required : services.map((s) => s.name);
  return names.every((n) => services.some((s) => s.name === n && isServiceHealthy(s)));
}

function unhealthyNames(services: readonly ServiceReport[], required: readonly string[]): string[] {
  const names = required.length > 0 ? required : services.map((s) => s.name);
  return names.filter((n) => !services.some((s) => s.name === n && isServiceHealthy(s)));
}

/**
 * What an `applied` outcome does to a project. Results for an older spec version (or a desired
 * state that has since changed) only advance applied_version; the status moves only when the
 * agent has applied exactly what is wanted now. Applying the same outcome twice gives the same
 * project (idempotent).
 */
export function outcomePatch(
  p: ProjectRow,
  r: Outcome,
  now: Date,
  required: readonly string[],
): { patch: Patch; removed: boolean } {
  const patch: Patch = {};
  if (r.version > p.appliedVersion) patch.appliedVersion = r.version;
  if (p.status === "REMOVED" || r.version !== p.specVersion || r.desiredState !== p.desiredState) {
    return { patch, removed: false };
  }
  // A backup is being restored in place: its job, not the apply, ends RESTORING (ADR 0015).
  if (p.restoreJobId && r.desiredState === "running") return { patch, removed: false };
  // An upgrade holds the project: its job, not an apply, ends UPGRADING (ADR 0037).
  if (p.upgradeId) return { patch, removed: false };
  const status = p.status as ProjectStatus;
  if (r.ok) {
    patch.statusReason = null;
    switch (r.desiredState) {
      case "running":
        if (requiredHealthy(p.health, required)) patch.status = "ACTIVE_HEALTHY";
        else if (status === "INIT_FAILED") patch.status = "COMING_UP";
        else if (status === "RESTORE_FAILED" || status === "PAUSE_FAILED") patch.status = "RESTORING";
        return { patch, removed: false };
      case "paused":
        if (status !== "INACTIVE") {
          patch.status = "INACTIVE";
          patch.pausedAt = now;
        }
        return { patch, removed: false };
      case "deleted":
        patch.status = "REMOVED";
        return { patch, removed: true };
    }
  }
  patch.statusReason = r.error?.trim() || "The host agent could not apply this change (no reason given)";
  switch (r.desiredState) {
    case "running":
      if (status === "COMING_UP" || status === "INIT_FAILED") patch.status = "INIT_FAILED";
      else if (status === "RESTORING" || status === "RESTORE_FAILED") patch.status = "RESTORE_FAILED";
      else patch.status = "ACTIVE_UNHEALTHY";
      break;
    case "paused":
      patch.status = "PAUSE_FAILED";
      break;
    case "deleted":
      // Studio has no "delete failed" status: the project stays GOING_DOWN with the reason, and
      // the teardown is retried on the agent's next connect.
      break;
  }
  return { patch, removed: false };
}

/** What a health report does to a running project's status once its current spec is applied. */
export function healthPatch(p: ProjectRow, services: Health["services"], required: readonly string[]): Patch {
  if (p.desiredState !== "running" || p.appliedVersion < p.specVersion) return {};
  // While a backup is restored in place the services restart: only the restore job ends RESTORING.
  // Likewise an upgrade stops and starts the stack: only its job ends UPGRADING (ADR 0037).
  if (p.restoreJobId || p.upgradeId) return {};
  const healthy = requiredHealthy(services, required);
  const status = p.status as ProjectStatus;
  if (healthy && ["COMING_UP", "RESTORING", "RESTARTING", "ACTIVE_UNHEALTHY"].includes(status)) {
    return { status: "ACTIVE_HEALTHY", statusReason: null };
  }
  if (!healthy && status === "ACTIVE_HEALTHY") {
    return {
      status: "ACTIVE_UNHEALTHY",
      statusReason: `Unhealthy services: ${unhealthyNames(services, required).join(", ")}`,
    };
  }
  return {};
}

/** The services that must be healthy for ACTIVE_HEALTHY: required ones of the parts the project runs. */
export function requiredServicesOf(
  deps: Pick<AppDeps, "releases">,
  release: string,
  parts?: readonly string[] | null,
): string[] {
  const manifest = deps.releases.get(release);
  if (!manifest) return [];
  return runningServices(manifest.services, effectiveParts(manifest, parts))
    .filter(([, s]) => s.required)
    .map(([n]) => n);
}

/** Record an `applied` frame from `hostId`. Returns false when the project is not on that host. */
export async function recordApplied(deps: AppDeps, hostId: string, frame: Applied | (Outcome & { ref: string })) {
  return deps.database.db.transaction(async (tx) => {
    const [p] = await tx
      .select()
      .from(projects)
      .where(and(eq(projects.ref, frame.ref), eq(projects.hostId, hostId)))
      .for("update")
      .limit(1);
    if (!p) return false;
    if (frame.version > p.specVersion) return true; // from a future we never asked for: ignore
    const { patch, removed } = outcomePatch(
      p,
      frame,
      new Date(deps.clock.now()),
      requiredServicesOf(deps, p.release, p.parts),
    );
    if (Object.keys(patch).length > 0) {
      await tx
        .update(projects)
        .set({ ...patch, ...(patch.status ? { updatedAt: new Date(deps.clock.now()) } : {}) })
        .where(eq(projects.id, p.id));
    }
    if (removed) await releasePorts(tx, p.ref);
    return true;
  });
}

/** Record a `health` frame from `hostId`. Returns false when the project is not on that host. */
export async function recordHealth(deps: AppDeps, hostId: string, frame: Health): Promise<boolean> {
  return deps.database.db.transaction(async (tx) => {
    const [p] = await tx
      .select()
      .from(projects)
      .where(and(eq(projects.ref, frame.ref), eq(projects.hostId, hostId)))
      .for("update")
      .limit(1);
    if (!p) return false;
    if (p.status === "REMOVED") return true;
    const patch = healthPatch(p, frame.services, requiredServicesOf(deps, p.release, p.parts));
    const now = new Date(deps.clock.now());
    await tx
      .update(projects)
      .set({ ...patch, health: frame.services, healthAt: now, ...(patch.status ? { updatedAt: now } : {}) })
      .where(eq(projects.id, p.id));
    return true;
  });
}

/** The `apply` frame for a project as the database wants it now (stack rendered from its release). */
export async function buildApply(
  deps: AppDeps,
  db: Executor,
  p: ProjectRow,
  host: { bindAddress: string; reachability?: Reachability },
): Promise<Apply> {
  const base: Apply = {
    v: PROTOCOL_VERSION,
    type: "apply",
    ref: p.ref,
    version: p.specVersion,
    desiredState: p.desiredState,
    restartNonce: p.restartNonce,
  };
  if (p.desiredState === "deleted") return base;
  const release = deps.releases.get(p.release);
  if (!release) throw new Error(`project ${p.ref} runs release ${p.release}, which this control plane does not know`);
  const ports = await projectPorts(db, p.ref);
  const stack = renderStack(release, {
    ref: p.ref,
    bindAddress: host.bindAddress,
    ports,
    ...computeLimits(isComputeSize(p.computeSize) ? p.computeSize : "nano"),
    parts: p.parts === null ? null : effectiveParts(release, p.parts),
    variables: await projectVariables(deps, db, p, host, ports),
    // An ingress host's proxy routes `<ref>.<projects domain>` (ADR 0036); without a projects
    // domain there is no name to route by, and the host is served like a direct one.
    ...(host.reachability === "ingress" && deps.config.projects.domain !== undefined
      ? { ingress: { hostname: `${p.ref}.${deps.config.projects.domain}` } }
      : {}),
  });
  await stampUrlDomains(db, deps.config, p);
  return { ...base, stack };
}
