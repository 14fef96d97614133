import { spawnSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newProjectRef, type Stack } from "@supamanager/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { Reconciler } from "../reconcile/reconciler.js";
import { ProjectStore } from "../reconcile/store.js";
import { ensureBusyboxImage } from "../test-support/busybox-image.js";
import { apply } from "../test-support/frames.js";
import { DockerRuntime, detectCompose, PROJECT_LABEL } from "./docker.js";
import { run } from "./exec.js";
import type { RuntimeEvent } from "./types.js";

/**
 * The real runtime against a real engine: Compose (v2 plugin or v1) and dockerode. Needs `docker
 * info` to work (`bash .ci/start-docker`). In CI a missing engine is a failure, not a skip.
 */
const dockerUp = spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0;
const inCi = process.env.CI === "true";
if (!dockerUp && !inCi) {
  console.warn(
    "\n⚠️  host-agent/src/runtime/docker.test.ts SKIPPED: no Docker engine answers `docker info`. Run `bash .ci/start-docker`.\n",
  );
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${…} for Compose, not a JS template
const SECRET = 'pa$$ word with ${dollars} and "double" quotes #not-a-comment';

function composeFor(image: string) {
  return JSON.stringify({
    services: {
      app: {
        image,
        init: true,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${…} for Compose, not a JS template
        environment: { SECRET_VALUE: "${SECRET_VALUE}" },
        // $$ is a literal $ for Compose: the shell in the container expands SECRET_VALUE.
        command: ["sh", "-c", 'printf %s "$$SECRET_VALUE" > /data/v; exec sleep 3600'],
        healthcheck: { test: ["CMD", "test", "-f", "/data/v"], interval: "1s", timeout: "1s", retries: 30 },
        volumes: ["data:/data"],
        mem_limit: "64m",
      },
      side: { image, init: true, command: ["sleep", "3600"] },
    },
    volumes: { data: {} },
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const labelled = async (kind: "ps" | "volume" | "network", ref: string) => {
  const args =
    kind === "ps"
      ? ["ps", "-aq", "--filter", `label=${PROJECT_LABEL}=${ref}`]
      : [kind, "ls", "-q", "--filter", `label=${PROJECT_LABEL}=${ref}`];
  return (await run("docker", args)).split("\n").filter(Boolean);
};

describe.skipIf(!dockerUp && !inCi)("DockerRuntime on a real engine", () => {
  const ref = newProjectRef();
  let dataDir: string;
  let runtime: DockerRuntime;
  let store: ProjectStore;
  let reconciler: Reconciler;
  let stack: Stack;
  const events: RuntimeEvent[] = [];
  let sub: { close(): void } | undefined;

  beforeAll(async () => {
    if (!dockerUp) throw new Error("CI=true and no Docker engine answers `docker info`: the runtime tests cannot run");
    const image = await ensureBusyboxImage();
    dataDir = await mkdtemp(join(tmpdir(), "agent-docker-"));
    runtime = await DockerRuntime.create({ logger: memoryLogger() });
    store = new ProjectStore(dataDir);
    await store.init();
    reconciler = new Reconciler({ store, runtime, logger: memoryLogger() });
    stack = {
      release: "busybox-test",
      composeFile: composeFor(image),
      env: { SECRET_VALUE: SECRET },
      files: [],
      requiredServices: ["app"],
      endpoints: {},
    };
    sub = runtime.watchEvents((e) => {
      if (e.ref === ref) events.push(e);
    });
  }, 180_000);

  afterAll(async () => {
    sub?.close();
    if (!dockerUp) return;
    // Whatever a failed test left behind.
    for (const id of await labelled("ps", ref)) await run("docker", ["rm", "-f", id]).catch(() => undefined);
    for (const id of await labelled("volume", ref)) await run("docker", ["volume", "rm", id]).catch(() => undefined);
    for (const id of await labelled("network", ref)) await run("docker", ["network", "rm", id]).catch(() => undefined);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it("detects a Compose", async () => {
    expect(["v1", "v2"]).toContain(await detectCompose());
    expect(runtime.composeKind).toBe(await detectCompose());
  });

  it("running: up -d starts the project's containers, env values arrive literally, health turns healthy", async () => {
    const answer = await reconciler.apply(apply({ ref, version: 1, stack }));
    expect(answer).toMatchObject({ ok: true });
    const healthy = await until("app healthy", async () => {
      const list = await runtime.listProjectContainers(ref);
      return list.find((c) => c.service === "app" && c.health === "healthy") ? list : undefined;
    });
    expect(healthy.map((c) => [c.service, c.state]).sort()).toEqual([
      ["app", "running"],
      ["side", "running"],
    ]);
    const app = healthy.find((c) => c.service === "app");
    expect(await run("docker", ["exec", app?.id ?? "", "cat", "/data/v"])).toBe(SECRET);
    expect(await labelled("volume", ref)).toHaveLength(1);
    expect((await store.readState(ref))?.appliedVersion).toBe(1);
    await until("container events", async () => events.some((e) => e.action === "start"));
  }, 120_000);

  it("restart nonce: containers are restarted (new start time), same containers", async () => {
    const before = await runtime.listProjectContainers(ref);
    const started = async () =>
      (await run("docker", ["inspect", "-f", "{{.State.StartedAt}}", ...before.map((c) => c.id)])).trim();
    const t0 = await started();
    expect((await reconciler.apply(apply({ ref, version: 1, stack, restartNonce: 1 }))).ok).toBe(true);
    expect(await started()).not.toBe(t0);
    expect((await runtime.listProjectContainers(ref)).map((c) => c.id).sort()).toEqual(before.map((c) => c.id).sort());
  }, 120_000);

  it("containerStats samples exactly this project's running containers", async () => {
    const stats = await runtime.containerStats(ref);
    expect(stats.hostCpus).toBeGreaterThanOrEqual(1);
    expect(stats.containers.map((c) => c.service).sort()).toEqual(["app", "side"]);
    for (const c of stats.containers) {
      expect(c.cpuPercent).toBeGreaterThanOrEqual(0);
      expect(c.memoryBytes).toBeGreaterThan(0);
      expect(c.memoryLimitBytes).toBeGreaterThanOrEqual(c.memoryBytes);
    }
    // Another ref has no containers, so nothing of this project leaks into its answer.
    expect((await runtime.containerStats(newProjectRef())).containers).toEqual([]);
  }, 60_000);

  it("paused: containers stopped, volume kept", async () => {
    expect((await reconciler.apply(apply({ ref, version: 2, desiredState: "paused", stack }))).ok).toBe(true);
    // Docker 26 may list a container as running for a few ms after `compose stop` returned.
    const list = await until(
      "containers exited",
      async () => {
        const l = await runtime.listProjectContainers(ref);
        return l.every((c) => c.state === "exited") ? l : undefined;
      },
      5_000,
    );
    expect(list).toHaveLength(2);
    expect(list.map((c) => c.state)).toEqual(["exited", "exited"]);
    expect(await labelled("volume", ref)).toHaveLength(1);
    expect((await store.readState(ref))?.desiredState).toBe("paused");
  }, 120_000);

  it("a failing compose answers ok:false with compose's stderr (secrets scrubbed) and records nothing", async () => {
    // The image exists; Compose itself refuses the file (a port out of range).
    const doc = JSON.parse(stack.composeFile) as { services: { app: Record<string, unknown> } };
    doc.services.app.ports = ["127.0.0.1:70000:80"];
    const bad = { ...stack, composeFile: JSON.stringify(doc) };
    const answer = await reconciler.apply(apply({ ref, version: 3, stack: bad }));
    expect(answer.ok).toBe(false);
    expect(answer.error).toMatch(/docker.compose up -d --remove-orphans exited with/);
    expect(answer.error).not.toContain(SECRET);
    expect((await store.readState(ref))?.appliedVersion).toBe(2);
  }, 120_000);

  it("a missing image fails before compose, naming the image and the cause, and records nothing", async () => {
    const bad = { ...stack, composeFile: composeFor("supamanager-test/does-not-exist:nope") };
    const answer = await reconciler.apply(apply({ ref, version: 3, stack: bad }));
    expect(answer.ok).toBe(false);
    expect(answer.error).toMatch(/^cannot pull image supamanager-test\/does-not-exist:nope \(service app/);
    expect(answer.error).not.toContain(SECRET);
    expect((await store.readState(ref))?.appliedVersion).toBe(2);
  }, 120_000);

  it("deleted: containers, networks, volumes and the project directory are gone", async () => {
    expect((await reconciler.apply(apply({ ref, version: 4, desiredState: "deleted" }))).ok).toBe(true);
    expect(await labelled("ps", ref)).toEqual([]);
    expect(await labelled("volume", ref)).toEqual([]);
    expect(await labelled("network", ref)).toEqual([]);
    await expect(stat(store.dir(ref))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await runtime.listProjectContainers(ref)).toEqual([]);
  }, 120_000);
});
