import { describe, expect, it } from "vitest";
import type { z } from "zod";
import type { ApiClient } from "./client.js";
import { CliError } from "./errors.js";
import { type LiveLine, WAIT_GOALS, waitForStatus } from "./wait.js";

const REF = "abcdefghijklmnopqrst";

interface Step {
  status: string;
  pending_reason?: string;
  status_reason?: string;
}

/**
 * An API whose project walks through `steps`, one per status poll (the last one repeats), on a
 * fake clock advanced by each sleep. Unit test of the waiting logic only; cli.e2e.test.ts runs
 * --wait against a real control plane.
 */
function fakeApi(steps: Step[]) {
  let i = -1;
  const current = () => steps[Math.min(Math.max(i, 0), steps.length - 1)] as Step;
  const api = {
    request: async (schema: z.ZodType, _method: string, path: string) => {
      if (path.endsWith("/status")) {
        i += 1;
        return schema.parse({ status: current().status });
      }
      return schema.parse({ ref: REF, ...current() });
    },
  } as unknown as ApiClient;
  let t = 0;
  const sleep = async (ms: number) => {
    t += ms;
  };
  return { api, now: () => t, sleep };
}

function recordingLive() {
  const updates: string[] = [];
  const printed: string[] = [];
  let stopped = false;
  const live: LiveLine = {
    update: (text) => updates.push(text),
    print: (line) => printed.push(line),
    stop: () => {
      stopped = true;
    },
  };
  return { live, updates, printed, stopped: () => stopped };
}

describe("waitForStatus", () => {
  it("prints each status change with the time since the wait began", async () => {
    const f = fakeApi([{ status: "COMING_UP" }, { status: "COMING_UP" }, { status: "ACTIVE_HEALTHY" }]);
    const lines: string[] = [];
    const status = await waitForStatus(f.api, REF, WAIT_GOALS.create, {
      timeoutMs: 60_000,
      intervalMs: 2000,
      progress: (l) => lines.push(l),
      initial: "COMING_UP",
      now: f.now,
      sleep: f.sleep,
    });
    expect(status).toBe("ACTIVE_HEALTHY");
    expect(lines).toEqual([`${REF}: COMING_UP (0s)`, `${REF}: ACTIVE_HEALTHY (4s)`]);
  });

  it("shows the pending reason at once when the host was offline before the wait began", async () => {
    const offline = { status: "RESTORING", pending_reason: "the host is offline" };
    const f = fakeApi([offline, offline, offline, { status: "ACTIVE_HEALTHY" }]);
    const lines: string[] = [];
    await waitForStatus(f.api, REF, WAIT_GOALS.restore, {
      timeoutMs: 60_000,
      intervalMs: 1000,
      progress: (l) => lines.push(l),
      initial: "RESTORING",
      now: f.now,
      sleep: f.sleep,
    });
    expect(lines).toEqual([
      `${REF}: RESTORING (0s)`,
      `${REF}: waiting: the host is offline (0s)`,
      `${REF}: ACTIVE_HEALTHY (3s)`,
    ]);
  });

  it("shows a reason that appears while the status stays the same, and the status reason on failure", async () => {
    const f = fakeApi([
      { status: "COMING_UP" },
      { status: "COMING_UP" },
      { status: "COMING_UP", status_reason: "pulling images" },
      { status: "INIT_FAILED", status_reason: "cannot pull image x: no such host" },
    ]);
    const lines: string[] = [];
    const err = await waitForStatus(f.api, REF, WAIT_GOALS.create, {
      timeoutMs: 60_000,
      intervalMs: 1000,
      progress: (l) => lines.push(l),
      initial: "COMING_UP",
      detailEvery: 3,
      now: f.now,
      sleep: f.sleep,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toContain("INIT_FAILED (cannot pull image x: no such host)");
    expect(lines).toContain(`${REF}: pulling images (2s)`);
    expect(lines.at(-1)).toBe(`${REF}: INIT_FAILED (3s)`);
  });

  it("on a terminal keeps a live line with status, time and reason, printing permanent lines above it", async () => {
    const f = fakeApi([
      { status: "COMING_UP", pending_reason: "no host online in region eu" },
      { status: "ACTIVE_HEALTHY" },
    ]);
    const progress: string[] = [];
    const rec = recordingLive();
    await waitForStatus(f.api, REF, WAIT_GOALS.create, {
      timeoutMs: 60_000,
      intervalMs: 1000,
      progress: (l) => progress.push(l),
      live: rec.live,
      initial: "COMING_UP",
      now: f.now,
      sleep: f.sleep,
    });
    expect(progress).toEqual([]);
    expect(rec.printed).toEqual([
      `${REF}: COMING_UP (0s)`,
      `${REF}: waiting: no host online in region eu (0s)`,
      `${REF}: ACTIVE_HEALTHY (1s)`,
    ]);
    expect(rec.updates[0]).toBe(`${REF}: COMING_UP · 0s · waiting: no host online in region eu`);
    expect(rec.stopped()).toBe(true);
  });
});
