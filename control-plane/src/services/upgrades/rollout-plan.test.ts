import { describe, expect, it } from "vitest";
import { type PlanItem, planRollout, type RolloutStatus } from "./rollout-plan.js";

type Outcome = "ok" | "rolled_back" | "failed" | "refused";

/**
 * An in-memory fleet: each project's upgrade ends with its outcome when the fake agent finishes
 * it; `refused` projects cannot start (as beginUpgrade refuses a paused project). Every tick the
 * plan is applied, then the agent finishes the oldest running upgrade.
 */
function simulate(outcomes: Outcome[], parallel: number, opts: { stopAfterTicks?: number } = {}) {
  const items: PlanItem[] = outcomes.map((_, i) => ({
    id: i + 1,
    position: i,
    projectRef: `p${i}`,
    status: "PENDING",
    error: null,
  }));
  let status: RolloutStatus = "RUNNING";
  let stopReason: string | null = null;
  const started: string[] = [];
  const running: PlanItem[] = [];
  let maxConcurrent = 0;
  /** Running upgrades at each start, by project: the canary must have started alone. */
  const concurrentAtStart: Record<string, number> = {};
  for (let tick = 0; tick < 100 && status !== "COMPLETED" && status !== "STOPPED"; tick++) {
    if (opts.stopAfterTicks === tick && status === "RUNNING") status = "STOPPING";
    const plan = planRollout(status, parallel, items);
    status = plan.status;
    stopReason = plan.stopReason ?? stopReason;
    for (const id of plan.skip) {
      const it = items.find((i) => i.id === id) as PlanItem;
      it.status = "SKIPPED";
      it.error = "not started";
    }
    let capacity = plan.capacity;
    for (const id of plan.candidates) {
      if (capacity === 0) break;
      const it = items.find((i) => i.id === id) as PlanItem;
      if (outcomes[it.position] === "refused") {
        it.status = "SKIPPED";
        it.error = "refused";
        continue;
      }
      it.status = "RUNNING";
      running.push(it);
      started.push(it.projectRef);
      concurrentAtStart[it.projectRef] = running.length;
      capacity--;
    }
    maxConcurrent = Math.max(maxConcurrent, running.length);
    // Re-plan once after starting, as the executor does, so a rollout with nothing left ends now.
    const after = planRollout(status, parallel, items);
    if (after.status === "COMPLETED" || after.status === "STOPPED") status = after.status;
    // The fake agent finishes the oldest running upgrade.
    const done = running.shift();
    if (done) {
      const o = outcomes[done.position];
      done.status = o === "ok" ? "COMPLETED" : o === "rolled_back" ? "ROLLED_BACK" : "FAILED";
      done.error = o === "ok" ? null : "health check failed";
    }
  }
  return { status, stopReason, started, maxConcurrent, concurrentAtStart, items };
}

describe("planRollout", () => {
  it("upgrades a canary alone first, then N at a time, and completes", () => {
    const r = simulate(["ok", "ok", "ok", "ok", "ok", "ok", "ok"], 3);
    expect(r.status).toBe("COMPLETED");
    expect(r.started).toEqual(["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    expect(r.concurrentAtStart.p0).toBe(1);
    expect(r.maxConcurrent).toBe(3);
    expect(r.items.every((i) => i.status === "COMPLETED")).toBe(true);
  });

  it("never runs more than one at a time with parallel 1", () => {
    const r = simulate(["ok", "ok", "ok"], 1);
    expect(r.status).toBe("COMPLETED");
    expect(r.maxConcurrent).toBe(1);
  });

  it("stops when the canary fails: nothing else starts, the rest is skipped", () => {
    const r = simulate(["rolled_back", "ok", "ok", "ok"], 3);
    expect(r.status).toBe("STOPPED");
    expect(r.started).toEqual(["p0"]);
    expect(r.stopReason).toBe("the upgrade of p0 was rolled back: health check failed");
    expect(r.items.map((i) => i.status)).toEqual(["ROLLED_BACK", "SKIPPED", "SKIPPED", "SKIPPED"]);
  });

  it("stops at the first failure after the canary, letting the running upgrades finish", () => {
    // p0 canary ok; then p1, p2, p3 start together; p1 fails; p2 and p3 finish; p4+ never start.
    const r = simulate(["ok", "failed", "ok", "ok", "ok", "ok"], 3);
    expect(r.status).toBe("STOPPED");
    expect(r.started).toEqual(["p0", "p1", "p2", "p3"]);
    expect(r.stopReason).toMatch(/^the upgrade of p1 failed/);
    expect(r.items.map((i) => i.status)).toEqual([
      "COMPLETED",
      "FAILED",
      "COMPLETED",
      "COMPLETED",
      "SKIPPED",
      "SKIPPED",
    ]);
  });

  it("skips a project that cannot start, and the next one becomes the canary", () => {
    const r = simulate(["refused", "ok", "ok", "ok"], 2);
    expect(r.status).toBe("COMPLETED");
    expect(r.started).toEqual(["p1", "p2", "p3"]);
    expect(r.concurrentAtStart.p1).toBe(1);
    expect(r.items[0]).toMatchObject({ status: "SKIPPED", error: "refused" });
  });

  it("completes at once when no project can start", () => {
    const r = simulate(["refused", "refused"], 2);
    expect(r.status).toBe("COMPLETED");
    expect(r.started).toEqual([]);
  });

  it("an operator's stop skips what has not started and waits for what runs", () => {
    const r = simulate(["ok", "ok", "ok", "ok", "ok"], 2, { stopAfterTicks: 2 });
    expect(r.status).toBe("STOPPED");
    expect(r.items.filter((i) => i.status === "SKIPPED").length).toBeGreaterThan(0);
    expect(r.items.some((i) => i.status === "RUNNING" || i.status === "PENDING")).toBe(false);
  });

  it("does nothing for a finished rollout", () => {
    expect(planRollout("COMPLETED", 3, [])).toMatchObject({ status: "COMPLETED", capacity: 0, candidates: [] });
    expect(planRollout("STOPPED", 3, [])).toMatchObject({ status: "STOPPED", capacity: 0 });
  });
});
