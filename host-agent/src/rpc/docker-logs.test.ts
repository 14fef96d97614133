import { PROTOCOL_VERSION, type Rpc } from "@supamanager/shared";
import { beforeEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { demuxDockerLogs, lastLines, toLogLines } from "../runtime/logs.js";
import { FakeRuntime } from "../test-support/fake-runtime.js";
import { REF_A, REF_B } from "../test-support/frames.js";
import { type ProjectEndpoints, RpcForwarder } from "./forwarder.js";

/** The reserved `docker-logs` rpc, answered by the agent from the project's own containers. */

const SECRET_LINE = "password=hunter2-7f3a";

let runtime: FakeRuntime;
let projects: Record<string, ProjectEndpoints>;

beforeEach(() => {
  runtime = new FakeRuntime();
  projects = {
    [REF_A]: { desiredState: "running", endpoints: {} },
    [REF_B]: { desiredState: "stopped", endpoints: {} },
  };
  runtime.logs.set(REF_A, [
    { service: "db", stream: "stdout", text: "db line 1", timestamp: "2026-01-01T00:00:01Z" },
    { service: "db", stream: "stderr", text: SECRET_LINE, timestamp: "2026-01-01T00:00:03Z" },
    { service: "meta", stream: "stdout", text: "meta line 1", timestamp: "2026-01-01T00:00:02Z" },
  ]);
  runtime.logs.set(REF_B, [{ service: "db", stream: "stdout", text: "other project" }]);
});

function make(opts: { logs?: boolean } = {}) {
  const logger = memoryLogger();
  const f = new RpcForwarder({
    logger,
    project: async (ref) => projects[ref] ?? null,
    ...(opts.logs === false ? {} : { logs: (ref, o) => runtime.containerLogs(ref, o) }),
  });
  return { f, logger };
}

const rpc = (path: string, overrides: Partial<Rpc> = {}): Rpc => ({
  v: PROTOCOL_VERSION,
  type: "rpc",
  id: "rpc_logs",
  ref: REF_A,
  service: "docker-logs",
  method: "GET",
  path,
  headers: {},
  timeoutMs: 2_000,
  ...overrides,
});

describe("docker-logs rpc", () => {
  it("answers the project's lines merged by time, oldest first, without logging their text", async () => {
    const { f, logger } = make();
    const r = await f.handle(rpc("/logs?tail=100"));
    expect(r).toEqual({
      v: PROTOCOL_VERSION,
      type: "rpc_result",
      id: "rpc_logs",
      status: 200,
      contentType: "application/json",
      body: {
        lines: [
          { service: "db", stream: "stdout", text: "db line 1", timestamp: "2026-01-01T00:00:01Z" },
          { service: "meta", stream: "stdout", text: "meta line 1", timestamp: "2026-01-01T00:00:02Z" },
          { service: "db", stream: "stderr", text: SECRET_LINE, timestamp: "2026-01-01T00:00:03Z" },
        ],
      },
    });
    expect(logger.lines.join("\n")).not.toContain("hunter2");
  });

  it("filters by service and keeps the last `tail` lines", async () => {
    const { f } = make();
    const r = await f.handle(rpc("/logs?tail=1&service=db"));
    expect((r.body as { lines: unknown[] }).lines).toEqual([
      { service: "db", stream: "stderr", text: SECRET_LINE, timestamp: "2026-01-01T00:00:03Z" },
    ]);
  });

  it("serves a stopped project's logs too, only its own", async () => {
    const { f } = make();
    const r = await f.handle(rpc("/logs?tail=10", { ref: REF_B }));
    expect((r.body as { lines: { text: string }[] }).lines.map((l) => l.text)).toEqual(["other project"]);
  });

  it.each([
    ["unknown project", rpc("/logs?tail=10", { ref: "zzzzzzzzzzzzzzzzzzzz" }), /does not run project/],
    ["not GET", rpc("/logs?tail=10", { method: "POST" }), /GET only/],
    ["other path", rpc("/other?tail=10"), /\/logs only/],
    ["tail 0", rpc("/logs?tail=0"), /tail must be/],
    ["tail too big", rpc("/logs?tail=1001"), /tail must be/],
    ["tail not a number", rpc("/logs?tail=1e3"), /tail must be/],
    ["bad service", rpc("/logs?tail=1&service=../x"), /invalid service/],
  ])("refuses: %s", async (_name, request, message) => {
    const { f } = make();
    const r = await f.handle(request);
    expect(r.code).toBe("refused");
    expect(r.error).toMatch(message);
    expect(r.status).toBeUndefined();
  });

  it("refuses when the agent has no logs reader, and times out a slow one", async () => {
    expect((await make({ logs: false }).f.handle(rpc("/logs"))).code).toBe("refused");
    const slow = new RpcForwarder({
      logger: memoryLogger(),
      project: async () => projects[REF_A] ?? null,
      logs: () => new Promise(() => undefined),
    });
    const r = await slow.handle(rpc("/logs", { timeoutMs: 50 }));
    expect(r.code).toBe("timeout");
  });
});

describe("log stream helpers", () => {
  const frame = (kind: number, text: string) => {
    const payload = Buffer.from(text, "utf8");
    const header = Buffer.alloc(8);
    header[0] = kind;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };

  it("demultiplexes Docker's stdout/stderr framing and strips timestamps", () => {
    const buf = Buffer.concat([
      frame(1, "2026-01-01T00:00:01.123456789Z hello\n2026-01-01T00:00:02Z wor"),
      frame(1, "ld\n"),
      frame(2, "2026-01-01T00:00:03Z oops\r\n"),
    ]);
    expect(toLogLines("db", demuxDockerLogs(buf))).toEqual([
      { service: "db", stream: "stdout", text: "hello", timestamp: "2026-01-01T00:00:01.123456789Z" },
      { service: "db", stream: "stdout", text: "world", timestamp: "2026-01-01T00:00:02Z" },
      { service: "db", stream: "stderr", text: "oops", timestamp: "2026-01-01T00:00:03Z" },
    ]);
  });

  it("reads a TTY container's raw stream as stdout", () => {
    expect(toLogLines("db", demuxDockerLogs(Buffer.from("plain\nlines\n")))).toEqual([
      { service: "db", stream: "stdout", text: "plain" },
      { service: "db", stream: "stdout", text: "lines" },
    ]);
    expect(demuxDockerLogs(Buffer.alloc(0))).toEqual([]);
  });

  it("cuts very long lines and bounds the total size, dropping the oldest", () => {
    const [long] = toLogLines("db", [{ stream: "stdout", text: "x".repeat(20_000) }]);
    expect(long?.text.length).toBeLessThan(9_000);
    const many = Array.from({ length: 50 }, (_, i) => ({
      service: "db",
      stream: "stdout" as const,
      text: `${i}`.padEnd(1000, "."),
    }));
    const out = lastLines(many, 1000, 10_000);
    expect(out.truncated).toBe(true);
    expect(out.lines.length).toBeGreaterThan(5);
    expect(out.lines.length).toBeLessThan(10);
    expect(out.lines.at(-1)?.text.startsWith("49")).toBe(true);
    expect(lastLines(many, 3).lines.map((l) => l.text.slice(0, 2))).toEqual(["47", "48", "49"]);
  });
});
