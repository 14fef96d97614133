import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { FakeRuntime } from "../test-support/fake-runtime.js";
import { apply, REF_A, REF_B, stack } from "../test-support/frames.js";
import { plan, Reconciler, secretValues } from "./reconciler.js";
import { ProjectStore } from "./store.js";

const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe("plan()", () => {
  const state = {
    appliedVersion: 3,
    desiredState: "running" as const,
    restartNonce: 1,
    release: "r",
    memLimitBytes: 0,
    appliedAt: "x",
  };
  it.each([
    [
      "nothing applied yet",
      null,
      { version: 1, desiredState: "running", restartNonce: 0 },
      { kind: "converge", desiredState: "running", restart: false },
    ],
    [
      "same version, state and nonce",
      state,
      { version: 3, desiredState: "running", restartNonce: 1 },
      { kind: "noop" },
    ],
    [
      "restart nonce bumped",
      state,
      { version: 3, desiredState: "running", restartNonce: 2 },
      { kind: "converge", desiredState: "running", restart: true },
    ],
    [
      "new version",
      state,
      { version: 4, desiredState: "running", restartNonce: 1 },
      { kind: "converge", desiredState: "running", restart: false },
    ],
    [
      "pause",
      state,
      { version: 4, desiredState: "paused", restartNonce: 1 },
      { kind: "converge", desiredState: "paused", restart: false },
    ],
    [
      "pause with another nonce does not restart",
      state,
      { version: 4, desiredState: "paused", restartNonce: 9 },
      { kind: "converge", desiredState: "paused", restart: false },
    ],
    ["delete", state, { version: 4, desiredState: "deleted", restartNonce: 1 }, { kind: "delete" }],
    [
      "delete of an unknown project",
      null,
      { version: 1, desiredState: "deleted", restartNonce: 0 },
      { kind: "delete" },
    ],
    [
      "an older version is still applied (the control plane is the truth)",
      state,
      { version: 2, desiredState: "running", restartNonce: 1 },
      { kind: "converge", desiredState: "running", restart: false },
    ],
  ] as const)("%s", (_name, current, frame, expected) => {
    expect(plan(current, frame)).toEqual(expected);
  });
});

describe("secretValues()", () => {
  it("keeps long values and secret-named values, not short harmless ones", () => {
    expect(secretValues({ PORT: "5432", JWT_SECRET: "abc", LONG_THING: "abcdefgh", EMPTY_KEY: "" }).sort()).toEqual([
      "abc",
      "abcdefgh",
    ]);
  });
});

describe("Reconciler", () => {
  let dataDir: string;
  let store: ProjectStore;
  let runtime: FakeRuntime;
  let reconciler: Reconciler;
  let settled: string[];

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "agent-reconcile-"));
    store = new ProjectStore(dataDir);
    await store.init();
    runtime = new FakeRuntime();
    settled = [];
    reconciler = new Reconciler({
      store,
      runtime,
      logger: memoryLogger(),
      now: () => new Date("2026-11-25T00:00:00Z"),
      onSettled: (ref) => settled.push(ref),
    });
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("first apply writes the project directory with the right modes, runs up, then records state", async () => {
    const answer = await reconciler.apply(apply());
    expect(answer).toEqual({ v: 1, type: "applied", ref: REF_A, version: 1, desiredState: "running", ok: true });
    expect(runtime.ops()).toEqual(["up"]);
    const dir = store.dir(REF_A);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(join(dir, ".env"))).toBe(0o600);
    expect(await mode(join(dir, "docker-compose.json"))).toBe(0o600);
    expect(await mode(join(dir, "config/kong.yml"))).toBe(0o640);
    expect(await readFile(join(dir, ".env"), "utf8")).toBe(
      "PORT='5432'\nPOSTGRES_PASSWORD='s3cret-$value with spaces'\n",
    );
    expect(JSON.parse(await readFile(join(dir, "state.json"), "utf8"))).toEqual({
      appliedVersion: 1,
      desiredState: "running",
      restartNonce: 0,
      release: "local-test",
      memLimitBytes: (256 + 128) * 1024 * 1024,
      appliedAt: "2026-11-25T00:00:00.000Z",
      endpoints: {},
    });
    expect(await reconciler.inventory()).toEqual([{ ref: REF_A, appliedVersion: 1, state: "running" }]);
    expect(await reconciler.memReservedBytes()).toBe(384 * 1024 * 1024);
    expect(settled).toEqual([REF_A]);
  });

  it("applying the same version twice does nothing but answer ok again", async () => {
    await reconciler.apply(apply());
    const before = await readFile(join(store.dir(REF_A), "state.json"), "utf8");
    const again = await reconciler.apply(apply());
    expect(again.ok).toBe(true);
    expect(runtime.ops()).toEqual(["up"]);
    expect(await readFile(join(store.dir(REF_A), "state.json"), "utf8")).toBe(before);
  });

  it("a restart nonce bump at the same version runs up then restart", async () => {
    await reconciler.apply(apply());
    const answer = await reconciler.apply(apply({ restartNonce: 1 }));
    expect(answer.ok).toBe(true);
    expect(runtime.ops()).toEqual(["up", "up", "restart"]);
    expect((await store.readState(REF_A))?.restartNonce).toBe(1);
    // …and the same nonce again is a no-op
    await reconciler.apply(apply({ restartNonce: 1 }));
    expect(runtime.ops()).toEqual(["up", "up", "restart"]);
  });

  it("paused stops the containers and keeps the directory; running again brings them up", async () => {
    await reconciler.apply(apply());
    await reconciler.apply(apply({ version: 2, desiredState: "paused" }));
    expect(runtime.ops()).toEqual(["up", "stop"]);
    expect((await runtime.listProjectContainers(REF_A)).map((c) => c.state)).toEqual(["exited", "exited"]);
    expect(await reconciler.inventory()).toEqual([{ ref: REF_A, appliedVersion: 2, state: "paused" }]);
    expect(await reconciler.memReservedBytes()).toBe(0);
    await reconciler.apply(apply({ version: 3 }));
    expect(runtime.ops()).toEqual(["up", "stop", "up"]);
  });

  it("deleted runs down -v and removes the project directory", async () => {
    await reconciler.apply(apply());
    const answer = await reconciler.apply(apply({ version: 2, desiredState: "deleted" }));
    expect(answer).toMatchObject({ ok: true, desiredState: "deleted", version: 2 });
    expect(runtime.ops()).toEqual(["up", "down"]);
    await expect(stat(store.dir(REF_A))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await reconciler.inventory()).toEqual([]);
  });

  it("deleting a project this host never had answers ok without touching compose", async () => {
    const answer = await reconciler.apply(apply({ ref: REF_B, desiredState: "deleted" }));
    expect(answer.ok).toBe(true);
    expect(runtime.ops()).toEqual([]);
  });

  it("deleting a project whose directory is gone but whose containers remain fails loudly", async () => {
    runtime.containers.set(REF_B, [{ id: "x", service: "db", state: "running", health: "none" }]);
    const answer = await reconciler.apply(apply({ ref: REF_B, desiredState: "deleted" }));
    expect(answer.ok).toBe(false);
    expect(answer.error).toMatch(/directory is missing but 1 container/);
  });

  it("records state only after compose succeeded; a failed apply is retried by the next frame", async () => {
    await reconciler.apply(apply());
    runtime.failNext.up = "Error: image busybox:nope not found\npassword was s3cret-$value with spaces";
    const failed = await reconciler.apply(apply({ version: 2 }));
    expect(failed.ok).toBe(false);
    expect(failed.error).toContain("docker compose up exited with 1");
    expect(failed.error).toContain("image busybox:nope not found");
    expect(failed.error).not.toContain("s3cret");
    expect((await store.readState(REF_A))?.appliedVersion).toBe(1);
    expect(await reconciler.inventory()).toEqual([{ ref: REF_A, appliedVersion: 1, state: "running" }]);
    const retried = await reconciler.apply(apply({ version: 2 }));
    expect(retried.ok).toBe(true);
    expect((await store.readState(REF_A))?.appliedVersion).toBe(2);
    expect(runtime.ops()).toEqual(["up", "up", "up"]);
  });

  it("a failed first apply leaves no state, so the inventory says version 0 / unknown", async () => {
    runtime.failNext.up = "boom";
    const failed = await reconciler.apply(apply());
    expect(failed.ok).toBe(false);
    expect(await reconciler.inventory()).toEqual([{ ref: REF_A, appliedVersion: 0, state: "unknown" }]);
  });

  it("a kill between compose and the state write means the same version is applied again after restart", async () => {
    await reconciler.apply(apply());
    // Simulate: files for v2 written and compose ran, but the agent died before state.json was written.
    await store.writeStack(REF_A, stack({ release: "v2" }));
    const fresh = new Reconciler({ store, runtime, logger: memoryLogger() });
    expect(await fresh.inventory()).toEqual([{ ref: REF_A, appliedVersion: 1, state: "running" }]);
    await fresh.apply(apply({ version: 2, stack: stack({ release: "v2" }) }));
    expect(runtime.ops()).toEqual(["up", "up"]);
    expect((await store.readState(REF_A))?.release).toBe("v2");
  });

  it("an unreadable state.json counts as nothing applied (re-apply, never a crash)", async () => {
    await reconciler.apply(apply());
    await writeFile(join(store.dir(REF_A), "state.json"), "{not json");
    expect(await reconciler.inventory()).toEqual([{ ref: REF_A, appliedVersion: 0, state: "unknown" }]);
    expect((await reconciler.apply(apply())).ok).toBe(true);
    expect(runtime.ops()).toEqual(["up", "up"]);
  });

  it.each([
    ["running without a stack", { stack: undefined }, /needs a stack/],
    [
      "a stack file named like the state file",
      { stack: stack({ files: [{ path: "state.json", content: "{}", mode: 0o600 }] }) },
      /reserved/,
    ],
    ["an env value with a line break", { stack: stack({ env: { A: "x\ny" } }) }, /line break/],
  ])("refuses %s without running compose", async (_name, overrides, error) => {
    const answer = await reconciler.apply(apply(overrides));
    expect(answer.ok).toBe(false);
    expect(answer.error).toMatch(error);
    expect(runtime.ops()).toEqual([]);
    expect(await store.readState(REF_A)).toBeNull();
  });

  it("serialises applies of one project and runs different projects concurrently, bounded", async () => {
    let open!: () => void;
    runtime.gate = new Promise<void>((r) => {
      open = r;
    });
    const refs = [REF_A, REF_B, "cdefghijklmnopqrstuv", "defghijklmnopqrstuvw"];
    const answers = [
      ...refs.map((ref) => reconciler.apply(apply({ ref }))),
      reconciler.apply(apply({ ref: REF_A, version: 2 })),
    ];
    await new Promise((r) => setTimeout(r, 30));
    expect(runtime.active).toBe(2);
    open();
    const results = await Promise.all(answers);
    expect(results.every((a) => a.ok)).toBe(true);
    expect(runtime.maxActive).toBe(2);
    expect(runtime.ops(REF_A)).toEqual(["up", "up"]);
    expect((await store.readState(REF_A))?.appliedVersion).toBe(2);
  });

  it("close() waits for the running apply and answers queued ones as not started", async () => {
    let open!: () => void;
    runtime.gate = new Promise<void>((r) => {
      open = r;
    });
    const first = reconciler.apply(apply());
    const second = reconciler.apply(apply({ version: 2 }));
    await new Promise((r) => setTimeout(r, 10));
    const closing = reconciler.close(5_000);
    open();
    expect(await closing).toBe(true);
    expect((await first).ok).toBe(true);
    expect(await second).toMatchObject({ ok: false, error: expect.stringMatching(/stopping/) });
    expect(runtime.ops()).toEqual(["up"]);
    expect(await reconciler.apply(apply({ version: 3 }))).toMatchObject({ ok: false });
  });

  it("answers (never rejects) when the data directory itself is unreadable", async () => {
    await reconciler.apply(apply());
    const { chmod, mkdir: mk } = await import("node:fs/promises");
    // A directory where state.json should be a file makes reading it fail with EISDIR.
    await rm(join(store.dir(REF_A), "state.json"));
    await mk(join(store.dir(REF_A), "state.json"));
    await chmod(store.dir(REF_A), 0o700);
    const answer = await reconciler.apply(apply({ version: 2 }));
    expect(answer).toMatchObject({ ok: false, error: expect.stringMatching(/agent error: .*EISDIR/) });
    expect(await reconciler.inventory()).toEqual([{ ref: REF_A, appliedVersion: 0, state: "unknown" }]);
  });

  it("close() gives up after its timeout when compose hangs", async () => {
    runtime.gate = new Promise<void>(() => {});
    void reconciler.apply(apply());
    await new Promise((r) => setTimeout(r, 10));
    expect(await reconciler.close(50)).toBe(false);
  });
});
