import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROTOCOL_VERSION } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Agent } from "./agent.js";
import { memoryLogger } from "./log.js";
import { FakeControlPlane } from "./test-support/control-plane.js";
import { FakeRuntime } from "./test-support/fake-runtime.js";
import { apply, REF_A, REF_B } from "./test-support/frames.js";

const welcome = (heartbeatIntervalMs = 40) => ({ v: 1, type: "welcome", hostId: "host_test", heartbeatIntervalMs });

describe("agent ↔ control plane (protocol level)", () => {
  let cp: FakeControlPlane;
  let url: string;
  let dataDir: string;
  let runtime: FakeRuntime;
  let logger: ReturnType<typeof memoryLogger>;
  let agent: Agent | null;

  const makeAgent = (session: NonNullable<ConstructorParameters<typeof Agent>[0]["session"]> = {}) => {
    agent = new Agent({
      dataDir,
      url,
      credential: cp.credential,
      hostname: "host-one",
      runtime,
      logger,
      session: {
        backoff: { baseMs: 20, capMs: 100 },
        authBackoff: { baseMs: 30, capMs: 60 },
        welcomeTimeoutMs: 2_000,
        ...session,
      },
      health: { pollMs: 60_000, reportMs: 60_000, debounceMs: 5 },
      drainTimeoutMs: 2_000,
    });
    return agent;
  };

  beforeEach(async () => {
    cp = new FakeControlPlane();
    url = await cp.listen();
    dataDir = await mkdtemp(join(tmpdir(), "agent-proto-"));
    runtime = new FakeRuntime();
    logger = memoryLogger();
    agent = null;
  });
  afterEach(async () => {
    await agent?.stop();
    await cp.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("says hello with its inventory from disk, heartbeats after welcome, reconnects after a drop", async () => {
    // A project applied by an earlier run of the agent.
    const dir = join(dataDir, "projects", REF_A);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "docker-compose.json"), JSON.stringify({ services: { db: { mem_limit: "1g" } } }));
    await writeFile(
      join(dir, "state.json"),
      JSON.stringify({
        appliedVersion: 7,
        desiredState: "running",
        restartNonce: 0,
        release: "r",
        memLimitBytes: 1073741824,
        appliedAt: "x",
      }),
    );
    await makeAgent().start();

    await cp.until(() => cp.frames("hello").length === 1, "hello");
    expect(cp.upgrades[0]?.authorization).toBe(`Bearer ${cp.credential}`);
    const hello = cp.frames("hello")[0];
    expect(hello).toMatchObject({
      v: PROTOCOL_VERSION,
      hostname: "host-one",
      compose: "v2",
      inventory: [{ ref: REF_A, appliedVersion: 7, state: "running" }],
    });
    expect(hello?.capacity.cpus).toBeGreaterThan(0);
    expect(hello?.capacity.memTotalBytes).toBeGreaterThan(0);
    expect(hello?.capacity.memReservedBytes).toBe(1073741824);

    // Nothing but hello before welcome: no heartbeat, and no health even when containers change.
    runtime.emit({ ref: REF_A, action: "start" });
    await new Promise((r) => setTimeout(r, 100));
    expect(cp.received.map((r) => r.frame.type)).toEqual(["hello"]);
    cp.send(welcome());
    await cp.until(() => cp.frames("heartbeat", 1).length >= 2, "two heartbeats");
    expect(cp.frames("heartbeat")[0]?.capacity.memReservedBytes).toBe(1073741824);
    // After welcome, the health of running projects is reported (db has no container: missing).
    await cp.until(() => cp.frames("health", 1).length >= 1, "health");
    expect(cp.frames("health", 1)[0]).toEqual({
      v: 1,
      type: "health",
      ref: REF_A,
      services: [{ name: "db", state: "missing", health: "none" }],
    });

    // The control plane drops the socket: the agent dials again and says hello again.
    cp.current.terminate();
    await cp.until(() => cp.frames("hello", 2).length === 1, "hello on the second connection");
    expect(agent?.connections).toBe(2);
    cp.send(welcome());
    await cp.until(() => cp.frames("heartbeat", 2).length >= 1, "heartbeat on the second connection");
  });

  it("answers malformed, unknown and wrong-version frames with an error frame and stays connected", async () => {
    await makeAgent().start();
    await cp.until(() => cp.frames("hello").length === 1, "hello");
    cp.send("{not json");
    cp.send({ v: 1, type: "reboot_everything" });
    cp.send({ v: 99, type: "welcome", hostId: "h", heartbeatIntervalMs: 10 });
    cp.send({ v: 1, type: "apply", ref: "NOT-A-REF", version: 1, desiredState: "running" });
    await cp.until(() => cp.frames("error").length === 4, "four error frames");
    expect(cp.frames("error").map((e) => e.code)).toEqual([
      "bad_frame",
      "bad_frame",
      "unsupported_version",
      "bad_frame",
    ]);
    expect(cp.frames("error")[3]?.message).toMatch(/ref/);
    // Still the same connection, still working.
    cp.send(welcome());
    await cp.until(() => cp.frames("heartbeat").length >= 1, "heartbeat");
    expect(agent?.connections).toBe(1);
    expect(runtime.calls).toEqual([]);
    expect(logger.entries().filter((e) => e.msg === "invalid frame from the control plane")).toHaveLength(4);
  });

  it("applies desired state and answers applied; the same version again is answered without compose", async () => {
    await makeAgent().start();
    await cp.until(() => cp.frames("hello").length === 1, "hello");
    cp.send(welcome(60_000));
    cp.send(apply());
    await cp.until(() => cp.frames("applied").length === 1, "applied");
    expect(cp.frames("applied")[0]).toEqual({
      v: 1,
      type: "applied",
      ref: REF_A,
      version: 1,
      desiredState: "running",
      ok: true,
    });
    // The health watcher reports the project's services after the apply.
    await cp.until(() => cp.frames("health").some((h) => h.services.length === 2), "health after apply");
    expect(cp.frames("health").at(-1)?.services).toEqual([
      { name: "db", state: "running", health: "healthy" },
      { name: "meta", state: "running", health: "healthy" },
    ]);
    cp.send(apply());
    await cp.until(() => cp.frames("applied").length === 2, "second applied");
    expect(cp.frames("applied")[1]?.ok).toBe(true);
    expect(runtime.ops()).toEqual(["up"]);

    // A container event for the project triggers a health report on change.
    const before = cp.frames("health").length;
    runtime.containers.set(REF_A, [
      { id: "1", service: "db", state: "exited", health: "none" },
      { id: "2", service: "meta", state: "running", health: "healthy" },
    ]);
    runtime.emit({ ref: REF_A, action: "die" });
    await cp.until(() => cp.frames("health").length > before, "health after die");
    expect(cp.frames("health").at(-1)?.services[0]).toEqual({ name: "db", state: "exited", health: "none" });

    // A job of an unknown kind, a malformed backup job and an rpc are answered, not ignored.
    cp.send({ v: 1, type: "job", jobId: "job_1", kind: "vacuum", ref: REF_A });
    cp.send({ v: 1, type: "job", jobId: "job_2", kind: "backup", ref: REF_A, params: { backupId: "b1" } });
    cp.send({
      v: 1,
      type: "rpc",
      id: "rpc_1",
      ref: REF_A,
      service: "meta",
      method: "GET",
      path: "/health",
      timeoutMs: 1000,
    });
    await cp.until(
      () => cp.frames("job_result").length === 2 && cp.frames("rpc_result").length === 1,
      "job and rpc answers",
    );
    const results = cp.frames("job_result").sort((a, b) => a.jobId.localeCompare(b.jobId));
    expect(results[0]).toMatchObject({
      jobId: "job_1",
      ok: false,
      error: expect.stringContaining('job kind "vacuum"'),
    });
    expect(results[1]).toMatchObject({
      jobId: "job_2",
      ok: false,
      error: expect.stringMatching(/^invalid backup job params: partSizeBytes: /),
    });
    expect(cp.frames("rpc_result")[0]).toMatchObject({ id: "rpc_1", error: expect.any(String) });

    // After a reconnect the inventory reflects the apply.
    cp.current.terminate();
    await cp.until(() => cp.frames("hello", 2).length === 1, "hello after reconnect");
    expect(cp.frames("hello", 2)[0]?.inventory).toEqual([{ ref: REF_A, appliedVersion: 1, state: "running" }]);
  });

  it("keeps retrying (slowly) when the control plane rejects its credential, and logs why", async () => {
    cp.rejectNext = 3;
    // Deterministic jitter: the normal backoff would retry at once, the auth backoff waits 150 ms.
    await makeAgent({
      backoff: { baseMs: 20, capMs: 100, random: () => 0 },
      authBackoff: { baseMs: 150, capMs: 150, random: () => 0.999 },
    }).start();
    await cp.until(() => cp.frames("hello").length === 1, "hello after three 401s");
    expect(cp.upgrades).toHaveLength(4);
    const gaps = cp.upgrades.slice(1).map((u, i) => u.at - (cp.upgrades[i]?.at ?? 0));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(140);
    const rejected = logger.entries().filter((e) => String(e.msg).includes("rejected this host's credential"));
    expect(rejected).toHaveLength(3);
    expect(rejected[0]).toMatchObject({ level: "error", status: 401, message: "host credential is not valid" });
  });

  it("stop() closes the socket with 1000 and never dials again", async () => {
    await makeAgent().start();
    await cp.until(() => cp.frames("hello").length === 1, "hello");
    cp.send(welcome());
    await agent?.stop();
    await cp.until(() => cp.closes.length === 1, "close");
    expect(cp.closes[0]).toEqual({ code: 1000, reason: "agent stopping" });
    await new Promise((r) => setTimeout(r, 200));
    expect(cp.upgrades).toHaveLength(1);
  });

  it("stop() lets a running apply finish and delivers its answer before closing", async () => {
    let open!: () => void;
    runtime.gate = new Promise<void>((r) => {
      open = r;
    });
    await makeAgent().start();
    await cp.until(() => cp.frames("hello").length === 1, "hello");
    cp.send(welcome(60_000));
    cp.send(apply({ ref: REF_B }));
    await new Promise((r) => setTimeout(r, 50));
    const stopping = agent?.stop();
    setTimeout(open, 50);
    await stopping;
    await cp.until(() => cp.closes.length === 1, "close");
    expect(cp.frames("applied")).toMatchObject([{ ref: REF_B, ok: true }]);
    expect(cp.closes[0]?.code).toBe(1000);
  });

  it("never logs the credential", async () => {
    cp.rejectNext = 1;
    await makeAgent().start();
    await cp.until(() => cp.frames("hello").length === 1, "hello");
    cp.send(welcome());
    await cp.until(() => cp.frames("heartbeat").length >= 1, "heartbeat");
    await agent?.stop();
    expect(logger.lines.length).toBeGreaterThan(3);
    expect(logger.lines.join("\n")).not.toContain(cp.credential);
  });

  it("a frame larger than the maximum closes the connection (1009) and the agent comes back", async () => {
    await makeAgent().start();
    await cp.until(() => cp.frames("hello").length === 1, "hello");
    cp.send({ v: 1, type: "welcome", hostId: "x".repeat(5 * 1024 * 1024), heartbeatIntervalMs: 10 });
    await cp.until(() => cp.closes.length === 1, "close");
    expect(cp.closes[0]?.code).toBe(1009);
    await cp.until(() => cp.frames("hello", 2).length === 1, "hello after reconnect");
  });
});

describe("data directory", () => {
  it("creates projects/ 0700", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "agent-dir-"));
    try {
      const a = new Agent({
        dataDir,
        url: "http://127.0.0.1:9",
        credential: "cred_0123456789abcdef",
        hostname: "h",
        runtime: new FakeRuntime(),
        logger: memoryLogger(),
      });
      await a.start();
      await a.stop();
      expect((await stat(join(dataDir, "projects"))).mode & 0o777).toBe(0o700);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
