import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DockerLogLine } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hosts, projects } from "../../control-plane/src/db/schema.js";
import {
  createLambdaTestRuntime,
  type LambdaTestRuntime,
  lambdaTestApp,
} from "../../control-plane/src/test-support/apigw.js";
import { signUpAndLogin, type TestUser } from "../../control-plane/src/test-support/factories.js";
import { type JoinedHost, joinHost } from "../../control-plane/src/test-support/fleet-factory.js";
import type { TestApp } from "../../control-plane/src/test-support/harness.js";
import { createOrg, createProjectViaApi, type TestOrg } from "../../control-plane/src/test-support/projects-factory.js";
import { Agent } from "../../host-agent/src/agent.js";
import { memoryLogger } from "../../host-agent/src/log.js";
import { FakeRuntime } from "../../host-agent/src/test-support/fake-runtime.js";
import { ApiGatewayEmulator } from "../support/apigw-emulator.js";

/**
 * The control plane on Lambda end to end: the host agent's own code (Agent, its Session and RPC
 * forwarder; a fake container runtime instead of Docker) connects to a local emulation of an API
 * Gateway WebSocket API, which invokes the Lambda WebSocket handler per event; the HTTP API is the
 * Lambda HTTP handler. Real PostgreSQL.
 */

let rt: LambdaTestRuntime;
let t: TestApp;
let emulator: ApiGatewayEmulator;
let wsUrl: string;
let admin: TestUser;
let org: TestOrg;
let host: JoinedHost;
let runtime: FakeRuntime;
let agent: Agent | undefined;
let dataDir: string;

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const connectionOf = async (hostId: string) =>
  (await rt.deps.database.db.select({ c: hosts.connectionId }).from(hosts).where(eq(hosts.id, hostId)))[0]?.c;

beforeAll(async () => {
  rt = await createLambdaTestRuntime({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  t = lambdaTestApp(rt);
  emulator = new ApiGatewayEmulator(rt.agent, rt.standIn);
  wsUrl = await emulator.listen();
  admin = await signUpAndLogin(t);
  org = await createOrg(t, admin);
  host = await joinHost(t, admin);
  dataDir = await mkdtemp(join(tmpdir(), "lambda-agent-"));
  runtime = new FakeRuntime();
});
afterAll(async () => {
  await agent?.stop();
  await emulator?.close();
  await rt?.dispose();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("an agent behind the emulated API Gateway WebSocket API", () => {
  it("a wrong credential is refused at $connect and the agent keeps retrying", async () => {
    const logger = memoryLogger();
    const wrong = new Agent({
      dataDir: await mkdtemp(join(tmpdir(), "lambda-agent-wrong-")),
      url: wsUrl,
      credential: "smh_0000000000000000000000000000000000000000000000",
      hostname: "wrong",
      runtime: new FakeRuntime(),
      logger,
      session: { authBackoff: { baseMs: 20, capMs: 40 } },
    });
    await wrong.start();
    await until("two refusals", async () => emulator.refused.length >= 2);
    await wrong.stop();
    expect(new Set(emulator.refused)).toEqual(new Set([401]));
    expect(logger.lines.join("\n")).toMatch(/rejected this host's credential/);
  });

  it("hello → welcome → apply for a project created through the Lambda HTTP handler → applied", async () => {
    agent = new Agent({
      dataDir,
      url: wsUrl,
      credential: host.credential,
      hostname: "lambda-host",
      runtime,
      logger: memoryLogger(),
      bindAddress: "127.0.0.1",
      session: { backoff: { baseMs: 20, capMs: 100 }, welcomeTimeoutMs: 5_000 },
      health: { pollMs: 60_000, reportMs: 60_000, debounceMs: 5 },
      drainTimeoutMs: 2_000,
    });
    await agent.start();
    await until("the agent's connection", () => connectionOf(host.hostId));
    await until("a welcomed connection", () => rt.hub.isConnected(host.hostId));

    const project = await createProjectViaApi(t, admin, org);
    const [row] = await rt.deps.database.db.select().from(projects).where(eq(projects.ref, project.ref));
    expect(row?.hostId).toBe(host.hostId);
    await until("compose up", async () => runtime.calls.some((c) => c.op === "up" && c.ref === project.ref));
    const applied = await until("applied_version", async () => {
      const [p] = await rt.deps.database.db.select().from(projects).where(eq(projects.ref, project.ref));
      return p && p.appliedVersion === p.specVersion ? p : undefined;
    });
    expect(applied.appliedVersion).toBeGreaterThan(0);
  });

  it("an RPC answer over 32 KiB arrives in fragments API Gateway accepts", async () => {
    const [p] = await rt.deps.database.db.select().from(projects).where(eq(projects.hostId, host.hostId));
    const ref = p?.ref as string;
    const lines: DockerLogLine[] = Array.from({ length: 400 }, (_, i) => ({
      service: "db",
      stream: "stdout",
      text: `line ${i} ${"ü".repeat(80)}`,
    }));
    runtime.logs.set(ref, lines);
    const connection = await connectionOf(host.hostId);
    const res = await t.request(`/platform/projects/${ref}/logs?tail=1000`, { token: admin.token });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { lines: DockerLogLine[] };
    expect(body.lines).toHaveLength(400);
    expect(JSON.stringify(body).length).toBeGreaterThan(32 * 1024);
    expect(await connectionOf(host.hostId)).toBe(connection); // no 1009, same connection
  });

  it("an RPC answer over 128 KiB is refused by the agent (413) and the connection stays", async () => {
    const [p] = await rt.deps.database.db.select().from(projects).where(eq(projects.hostId, host.hostId));
    const ref = p?.ref as string;
    runtime.logs.set(
      ref,
      Array.from({ length: 1000 }, (_, i) => ({ service: "db", stream: "stdout", text: `${i} ${"x".repeat(200)}` })),
    );
    const connection = await connectionOf(host.hostId);
    const res = await t.request(`/platform/projects/${ref}/logs?tail=1000`, { token: admin.token });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toMatch(/too large.*ask fewer lines/);
    expect(await connectionOf(host.hostId)).toBe(connection);
    expect(emulator.closes.filter((c) => c.code === 1009)).toEqual([]);
  });

  it("the agent stopping is a $disconnect: the host reads disconnected", async () => {
    await agent?.stop();
    agent = undefined;
    await emulator.settle();
    expect(await connectionOf(host.hostId)).toBeNull();
    expect(await rt.hub.isConnected(host.hostId)).toBe(false);
  });
});
