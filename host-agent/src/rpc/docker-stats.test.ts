import { PROTOCOL_VERSION, type Rpc } from "@supamanager/shared";
import { beforeEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { statsOf } from "../runtime/docker.js";
import { FakeRuntime } from "../test-support/fake-runtime.js";
import { REF_A, REF_B } from "../test-support/frames.js";
import { type ProjectEndpoints, RpcForwarder } from "./forwarder.js";

/** The reserved `docker-stats` rpc, answered by the agent from the project's own containers. */

let runtime: FakeRuntime;
let projects: Record<string, ProjectEndpoints>;

beforeEach(() => {
  runtime = new FakeRuntime();
  projects = { [REF_A]: { desiredState: "running", endpoints: {} } };
  runtime.stats.set(REF_A, [{ service: "db", cpuPercent: 12.5, memoryBytes: 1000, memoryLimitBytes: 4000 }]);
  runtime.stats.set(REF_B, [{ service: "db", cpuPercent: 99, memoryBytes: 9, memoryLimitBytes: 9 }]);
});

const make = (withStats = true) =>
  new RpcForwarder({
    logger: memoryLogger(),
    project: async (ref) => projects[ref] ?? null,
    ...(withStats ? { stats: (ref: string) => runtime.containerStats(ref) } : {}),
  });

const rpc = (overrides: Partial<Rpc> = {}): Rpc => ({
  v: PROTOCOL_VERSION,
  type: "rpc",
  id: "rpc_stats",
  ref: REF_A,
  service: "docker-stats",
  method: "GET",
  path: "/stats",
  headers: {},
  timeoutMs: 2_000,
  ...overrides,
});

describe("docker-stats rpc", () => {
  it("answers the project's own sample", async () => {
    expect(await make().handle(rpc())).toEqual({
      v: PROTOCOL_VERSION,
      type: "rpc_result",
      id: "rpc_stats",
      status: 200,
      contentType: "application/json",
      body: {
        containers: [{ service: "db", cpuPercent: 12.5, memoryBytes: 1000, memoryLimitBytes: 4000 }],
        hostCpus: 2,
      },
    });
  });

  it.each([
    ["a project this host does not run", rpc({ ref: REF_B }), /does not run project/],
    ["another method", rpc({ method: "POST" }), /GET \/stats only/],
    ["another path", rpc({ path: "/stats/../logs" }), /GET \/stats only/],
  ])("refuses %s", async (_n, request, error) => {
    const r = await make().handle(request);
    expect(r).toMatchObject({ code: "refused", error: expect.stringMatching(error) });
  });

  it("an agent built without stats refuses, saying so", async () => {
    expect(await make(false).handle(rpc())).toMatchObject({ code: "refused", error: expect.stringMatching(/stats/) });
  });

  it("a sample that takes too long answers timeout", async () => {
    const f = new RpcForwarder({
      logger: memoryLogger(),
      project: async (ref) => projects[ref] ?? null,
      stats: () => new Promise(() => {}),
    });
    expect(await f.handle(rpc({ timeoutMs: 30 }))).toMatchObject({ code: "timeout" });
  });
});

describe("statsOf (as docker stats computes it)", () => {
  it("CPU is the container's share of the host's CPU time in the sample, times the CPUs; memory excludes the page cache", () => {
    expect(
      statsOf({
        cpu_stats: { cpu_usage: { total_usage: 3_000_000 }, system_cpu_usage: 20_000_000, online_cpus: 2 },
        precpu_stats: { cpu_usage: { total_usage: 1_000_000 }, system_cpu_usage: 10_000_000 },
        memory_stats: { usage: 50_000_000, limit: 200_000_000, stats: { inactive_file: 10_000_000 } },
      }),
    ).toEqual({ cpuPercent: 40, memoryBytes: 40_000_000, memoryLimitBytes: 200_000_000 });
  });

  it("cgroup v1 names the page cache total_inactive_file; a missing previous reading counts from zero", () => {
    expect(
      statsOf({
        cpu_stats: { cpu_usage: { total_usage: 5 }, system_cpu_usage: 10, online_cpus: 1 },
        memory_stats: { usage: 300, limit: 1000, stats: { total_inactive_file: 100 } },
      }),
    ).toMatchObject({ cpuPercent: 50, memoryBytes: 200 });
  });
});
