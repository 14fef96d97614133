/**
 * The rules of a fleet-wide upgrade, as a pure function of its state (rollout.ts runs them
 * against the database; rollout-plan.test.ts against an in-memory fleet):
 *
 * - Projects start in `position` order. Until one upgrade has COMPLETED, at most one runs: the
 *   first project to start is the canary, and nothing else starts before it succeeded. A project
 *   that cannot start (refused: paused, too small, deleted…) is SKIPPED and the next one becomes
 *   the canary.
 * - After the canary, up to `parallel` run at once.
 * - The first ROLLED_BACK or FAILED upgrade stops the rollout: nothing new starts, the upgrades
 *   already running finish (an upgrade cannot be abandoned half-way), every project not started
 *   is SKIPPED, and the rollout ends STOPPED. An operator's stop does the same.
 * - When no project is left to start or running, the rollout is COMPLETED.
 */

export type RolloutStatus = "RUNNING" | "STOPPING" | "COMPLETED" | "STOPPED";
export type RolloutItemStatus = "PENDING" | "STARTING" | "RUNNING" | "COMPLETED" | "ROLLED_BACK" | "FAILED" | "SKIPPED";

export interface PlanItem {
  id: number;
  position: number;
  projectRef: string;
  status: RolloutItemStatus;
  error: string | null;
}

export interface Plan {
  /** The rollout's status after this step. */
  status: RolloutStatus;
  /** Set when the rollout starts stopping now: the failed project and why. */
  stopReason: string | null;
  /** PENDING items to skip (the rollout is stopping). */
  skip: number[];
  /** How many more upgrades may start now. */
  capacity: number;
  /** PENDING items to try, in order, until `capacity` of them started. */
  candidates: number[];
}

const ACTIVE: readonly RolloutItemStatus[] = ["STARTING", "RUNNING"];
const FAILED: readonly RolloutItemStatus[] = ["ROLLED_BACK", "FAILED"];

export function planRollout(status: RolloutStatus, parallel: number, items: readonly PlanItem[]): Plan {
  if (status === "COMPLETED" || status === "STOPPED") {
    return { status, stopReason: null, skip: [], capacity: 0, candidates: [] };
  }
  const ordered = [...items].sort((a, b) => a.position - b.position);
  const active = ordered.filter((i) => ACTIVE.includes(i.status)).length;
  const pending = ordered.filter((i) => i.status === "PENDING");
  let next: RolloutStatus = status;
  let stopReason: string | null = null;
  const failure = ordered.find((i) => FAILED.includes(i.status));
  if (next === "RUNNING" && failure) {
    next = "STOPPING";
    const how = failure.status === "ROLLED_BACK" ? "was rolled back" : "failed";
    stopReason = `the upgrade of ${failure.projectRef} ${how}${failure.error ? `: ${failure.error}` : ""}`;
  }
  if (next === "STOPPING") {
    return {
      status: active === 0 ? "STOPPED" : "STOPPING",
      stopReason,
      skip: pending.map((i) => i.id),
      capacity: 0,
      candidates: [],
    };
  }
  if (active === 0 && pending.length === 0) {
    return { status: "COMPLETED", stopReason: null, skip: [], capacity: 0, candidates: [] };
  }
  const canaryDone = ordered.some((i) => i.status === "COMPLETED");
  const limit = canaryDone ? Math.max(1, parallel) : 1;
  return {
    status: "RUNNING",
    stopReason: null,
    skip: [],
    capacity: Math.max(0, limit - active),
    candidates: pending.map((i) => i.id),
  };
}
