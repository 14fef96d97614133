import { describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { FakeRuntime } from "../test-support/fake-runtime.js";
import { REF_A } from "../test-support/frames.js";
import { HealthWatcher, summarize } from "./watcher.js";

describe("summarize", () => {
  it("reports expected services without a container as missing, sorted by name", () => {
    expect(summarize([{ id: "1", service: "meta", state: "running", health: "healthy" }], ["db", "meta"])).toEqual([
      { name: "db", state: "missing", health: "none" },
      { name: "meta", state: "running", health: "healthy" },
    ]);
  });
  it("lets the worst replica speak for a service and drops names the protocol can't carry", () => {
    expect(
      summarize(
        [
          { id: "1", service: "web", state: "running", health: "healthy" },
          { id: "2", service: "web", state: "running", health: "unhealthy" },
          { id: "3", service: "Bad_Name", state: "running", health: "none" },
        ],
        [],
      ),
    ).toEqual([{ name: "web", state: "running", health: "unhealthy" }]);
  });
});

describe("HealthWatcher", () => {
  it("sends on change only, except the periodic report of running projects", async () => {
    const runtime = new FakeRuntime();
    const sent: unknown[] = [];
    runtime.containers.set(REF_A, [{ id: "1", service: "db", state: "running", health: "starting" }]);
    const w = new HealthWatcher({
      runtime,
      logger: memoryLogger(),
      send: (f) => sent.push(f),
      projects: async () => [{ ref: REF_A, desiredState: "running", services: ["db"] }],
      pollMs: 60_000,
      reportMs: 60_000,
      debounceMs: 1,
    });
    w.start();
    await w.checkAll(false);
    expect(sent).toHaveLength(1); // the initial report; the poll saw no change
    await w.checkAll(false);
    expect(sent).toHaveLength(1);
    runtime.containers.set(REF_A, [{ id: "1", service: "db", state: "running", health: "healthy" }]);
    runtime.emit({ ref: REF_A, action: "health_status" });
    await new Promise((r) => setTimeout(r, 30));
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual({
      v: 1,
      type: "health",
      ref: REF_A,
      services: [{ name: "db", state: "running", health: "healthy" }],
    });
    await w.checkAll(true);
    expect(sent).toHaveLength(3);
    w.stop();
    runtime.emit({ ref: REF_A, action: "die" });
    await w.checkAll(true);
    expect(sent).toHaveLength(3);
  });
});
