import type { ProjectStatus } from "@supamanager/shared";
import { and, eq, inArray, sql } from "drizzle-orm";
import { projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { conflict } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { projectForMember } from "../organizations/access.js";
import type { Action } from "../permissions/matrix.js";
import { hostFactsFor } from "./host-facts.js";
import { type ProjectView, toView } from "./model.js";

export type LifecycleRequest = "pause" | "restore" | "restart";

interface Transition {
  action: Action;
  /** Stored statuses the request is legal from. */
  from: readonly ProjectStatus[];
  to: ProjectStatus;
  desired: "running" | "paused";
  restart: boolean;
  verb: string;
}

/**
 * Studio's lifecycle requests as desired-state changes. Each bumps the spec version (so the
 * agent applies it), clears the last health report (so stale "healthy" can never finish a
 * transition), and sets the transitional status Studio polls for.
 */
const TRANSITIONS: Record<LifecycleRequest, Transition> = {
  pause: {
    action: "projects.lifecycle",
    from: ["ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY", "INIT_FAILED", "PAUSE_FAILED", "RESTORE_FAILED"],
    to: "PAUSING",
    desired: "paused",
    restart: false,
    verb: "paused",
  },
  restore: {
    action: "projects.lifecycle",
    from: ["INACTIVE", "PAUSE_FAILED", "RESTORE_FAILED"],
    to: "RESTORING",
    desired: "running",
    restart: false,
    verb: "restored",
  },
  restart: {
    action: "projects.restart",
    from: ["ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY"],
    to: "RESTARTING",
    desired: "running",
    restart: true,
    verb: "restarted",
  },
};

function illegal(request: LifecycleRequest, status: string): string {
  const why: Record<string, string> = {
    PAUSING: "it is already pausing",
    INACTIVE: "it is paused",
    RESTORING: "it is being restored",
    UPGRADING: "it is being upgraded to another release",
    RESTARTING: "it is restarting",
    COMING_UP: "it is still coming up",
    GOING_DOWN: "it is being deleted",
    ACTIVE_HEALTHY: "it is running",
    ACTIVE_UNHEALTHY: "it is running",
  };
  return `Project cannot be ${TRANSITIONS[request].verb} while its status is ${status}${why[status] ? ` (${why[status]})` : ""}`;
}

/** Pause, restore or restart a project; 409 when its status does not allow it. */
export async function requestLifecycle(
  ctx: AuthedContext,
  ref: string,
  request: LifecycleRequest,
): Promise<ProjectView> {
  const t = TRANSITIONS[request];
  const { project, org } = await projectForMember(ctx, ref, t.action);
  if (!t.from.includes(project.status as ProjectStatus)) throw conflict(illegal(request, project.status));
  const row = await ctx.db.transaction(async (tx) => {
    // Conditional on the status, so two concurrent requests cannot both pass the check.
    const [updated] = await tx
      .update(projects)
      .set({
        status: t.to,
        statusReason: null,
        desiredState: t.desired,
        specVersion: sql`${projects.specVersion} + 1`,
        ...(t.restart ? { restartNonce: sql`${projects.restartNonce} + 1` } : {}),
        health: null,
        healthAt: null,
        updatedAt: new Date(ctx.deps.clock.now()),
      })
      .where(and(eq(projects.id, project.id), inArray(projects.status, [...t.from])))
      .returning();
    if (!updated) throw conflict(`Project ${ref} changed state meanwhile; try again`);
    await recordAudit(tx, ctx.meta, {
      action: `project.${request}`,
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: ref,
      target: ref,
      details: { from: project.status, spec_version: updated.specVersion },
    });
    return updated;
  });
  if (row.hostId) await ctx.deps.hub.kick(row.hostId);
  return toView(row, org.slug, await hostFactsFor(ctx, row));
}

export interface PauseStatus {
  canRestore: boolean;
  lastPausedOn: Date | null;
  maxDaysTillRestoreDisabled: number;
  remainingDaysTillRestoreDisabled: number | null;
}

/**
 * Studio's pause/status. Our paused projects keep their volumes on the host indefinitely, so
 * restore never expires; the "days till restore disabled" fields carry a large constant.
 */
export const RESTORE_WINDOW_DAYS = 36_500;

export async function pauseStatus(ctx: AuthedContext, ref: string): Promise<PauseStatus> {
  const { project } = await projectForMember(ctx, ref, "projects.read");
  const paused = project.status === "INACTIVE";
  return {
    canRestore: TRANSITIONS.restore.from.includes(project.status as ProjectStatus),
    lastPausedOn: project.pausedAt,
    maxDaysTillRestoreDisabled: RESTORE_WINDOW_DAYS,
    remainingDaysTillRestoreDisabled: paused ? RESTORE_WINDOW_DAYS : null,
  };
}
