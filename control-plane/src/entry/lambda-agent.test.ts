import { PROTOCOL_VERSION, type ServerFrame } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentRpcs, hosts, projects } from "../db/schema.js";
import {
  APIGW_MAX_MESSAGE_BYTES,
  LAMBDA_MAX_RPC_RESULT_BYTES,
  LAMBDA_RPC_MAX_TIMEOUT_MS,
} from "../services/fleet/apigw-hub.js";
import {
  connectionId,
  createLambdaTestRuntime,
  type LambdaTestRuntime,
  lambdaTestApp,
  webSocketEvent,
} from "../test-support/apigw.js";
import { signUpAndLogin, type TestUser } from "../test-support/factories.js";
import { capacity, GiB, type JoinedHost, joinHost } from "../test-support/fleet-factory.js";
import type { TestApp } from "../test-support/harness.js";
import { createOrg, createProjectViaApi, type TestOrg } from "../test-support/projects-factory.js";

/**
 * The agent channel on Lambda: synthetic API Gateway WebSocket events ($connect, $default,
 * $disconnect) against real PostgreSQL, with a local stand-in of the @connections management API
 * recording what the control plane posts.
 */

let rt: LambdaTestRuntime;
let t: TestApp;
let admin: TestUser;
let org: TestOrg;

beforeAll(async () => {
  rt = await createLambdaTestRuntime({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  t = lambdaTestApp(rt);
  admin = await signUpAndLogin(t);
  org = await createOrg(t, admin);
});
afterAll(async () => {
  await rt?.dispose();
});

const frame = (f: Record<string, unknown>) => JSON.stringify({ v: PROTOCOL_VERSION, ...f });
const hello = (inventory: unknown[] = []) =>
  frame({ type: "hello", agentVersion: "0.1.0", hostname: "h", compose: "v2", capacity: capacity(8 * GiB), inventory });

const connect = (id: string, credential: string | undefined) =>
  rt.agent(webSocketEvent("$connect", id, { headers: credential ? { Authorization: `Bearer ${credential}` } : {} }));
const send = (id: string, body: string, base64 = false) => rt.agent(webSocketEvent("$default", id, { body, base64 }));
const disconnect = (id: string, code = 1001, reason = "Going away") =>
  rt.agent(webSocketEvent("$disconnect", id, { code, reason }));

async function hostRow(hostId: string) {
  const [row] = await rt.deps.database.db.select().from(hosts).where(eq(hosts.id, hostId));
  return row;
}

const ofType = <T extends ServerFrame["type"]>(frames: ServerFrame[], type: T) =>
  frames.filter((f): f is Extract<ServerFrame, { type: T }> => f.type === type);

/** A joined host whose agent connected and said hello. */
async function connectedHost(): Promise<JoinedHost & { conn: string }> {
  const host = await joinHost(t, admin);
  const conn = connectionId();
  expect((await connect(conn, host.credential)).statusCode).toBe(200);
  await send(conn, hello());
  return { ...host, conn };
}

describe("$connect", () => {
  it("refuses a missing or unknown credential with 401 before the socket opens", async () => {
    for (const credential of [undefined, "smh_not-a-real-credential-0000000000000000", "garbage"]) {
      const res = await connect(connectionId(), credential);
      expect(res.statusCode).toBe(401);
      expect(JSON.parse(res.body ?? "{}")).toMatchObject({
        code: "unauthorized",
        message: "Unknown or revoked host credential",
      });
    }
  });

  it("accepts the host credential and stores the connection id on the host", async () => {
    const host = await joinHost(t, admin);
    const conn = connectionId();
    // API Gateway passes header names as the client sent them.
    const res = await rt.agent(
      webSocketEvent("$connect", conn, { headers: { authorization: `bearer ${host.credential}` } }),
    );
    expect(res.statusCode).toBe(200);
    expect((await hostRow(host.hostId))?.connectionId).toBe(conn);
  });

  it("refuses a removed host's credential (403-free: 401, the agent then retries slowly)", async () => {
    const host = await joinHost(t, admin);
    const removed = await t.request(`/platform/fleet/hosts/${host.hostId}`, { method: "DELETE", token: admin.token });
    expect(removed.status, await removed.clone().text()).toBeLessThan(300);
    expect((await connect(connectionId(), host.credential)).statusCode).toBe(401);
  });

  it("replaces an older connection of the same host and closes it", async () => {
    const host = await joinHost(t, admin);
    const first = connectionId();
    const second = connectionId();
    await connect(first, host.credential);
    await connect(second, host.credential);
    expect((await hostRow(host.hostId))?.connectionId).toBe(second);
    expect(rt.standIn.deletes).toContain(first);
    // A frame still arriving on the old connection is refused and that connection closed again.
    await send(first, frame({ type: "heartbeat", capacity: capacity() }));
    expect(ofType(rt.standIn.framesTo(first), "error")[0]?.code).toBe("unauthorized");
  });
});

describe("$default", () => {
  it("answers hello with welcome, then sends the applies of the host's projects", async () => {
    const host = await joinHost(t, admin);
    const conn = connectionId();
    await connect(conn, host.credential);
    expect(await rt.hub.isConnected(host.hostId)).toBe(false); // no hello yet, never seen
    await send(conn, hello());
    const frames = rt.standIn.framesTo(conn);
    expect(frames[0]).toMatchObject({ type: "welcome", hostId: host.hostId, heartbeatIntervalMs: 15_000 });
    expect(await rt.hub.isConnected(host.hostId)).toBe(true);
    const row = await hostRow(host.hostId);
    expect(row?.agentVersion).toBe("0.1.0");
    expect(row?.compose).toBe("v2");

    // A project placed on the connected host: the HTTP request's kick posts the apply at once.
    const project = await createProjectViaApi(t, admin, org);
    const [placed] = await rt.deps.database.db.select().from(projects).where(eq(projects.ref, project.ref));
    expect(placed?.hostId).toBe(host.hostId);
    const applies = ofType(rt.standIn.framesTo(conn), "apply");
    expect(applies.map((a) => a.ref)).toEqual([project.ref]);
    const apply = applies[0];
    expect(apply?.stack?.composeFile.length).toBeGreaterThan(100);
    // Every posted message fits API Gateway's limit (the rendered stack included).
    for (const p of rt.standIn.posts) expect(Buffer.byteLength(p.text)).toBeLessThanOrEqual(APIGW_MAX_MESSAGE_BYTES);

    // The agent's answer, base64-encoded as API Gateway delivers binary frames.
    await send(
      conn,
      frame({ type: "applied", ref: project.ref, version: apply?.version, desiredState: "running", ok: true }),
      true,
    );
    const [after] = await rt.deps.database.db.select().from(projects).where(eq(projects.ref, project.ref));
    expect(after?.appliedVersion).toBe(apply?.version);

    // A reconnect (new connection, new hello with the inventory) does not resend what was applied.
    const again = connectionId();
    await connect(again, host.credential);
    await send(again, hello([{ ref: project.ref, appliedVersion: apply?.version, state: "running" }]));
    expect(rt.standIn.framesTo(again).map((f) => f.type)).toEqual(["welcome"]);
  });

  it("records heartbeats, and answers an invalid frame with an error frame", async () => {
    const host = await connectedHost();
    await rt.deps.database.db
      .update(hosts)
      .set({ lastSeenAt: new Date(0) })
      .where(eq(hosts.id, host.hostId));
    await send(host.conn, frame({ type: "heartbeat", capacity: capacity(3 * GiB) }));
    const row = await hostRow(host.hostId);
    expect(row?.memFreeBytes).toBe(3 * GiB);
    expect(Date.now() - (row?.lastSeenAt?.getTime() ?? 0)).toBeLessThan(60_000);

    await send(host.conn, "{not json");
    await send(host.conn, frame({ type: "applied", ref: "nope" }));
    const errors = ofType(rt.standIn.framesTo(host.conn), "error");
    expect(errors.map((e) => e.code)).toEqual(["bad_frame", "bad_frame"]);
  });

  it("refuses frames about another host's project", async () => {
    const owner = await connectedHost();
    const project = await createProjectViaApi(t, admin, org);
    await rt.deps.database.db.update(projects).set({ hostId: owner.hostId }).where(eq(projects.ref, project.ref));
    const other = await connectedHost();
    await send(other.conn, frame({ type: "applied", ref: project.ref, version: 1, desiredState: "running", ok: true }));
    expect(ofType(rt.standIn.framesTo(other.conn), "error").map((e) => e.code)).toEqual(["unauthorized"]);
    const [p] = await rt.deps.database.db.select().from(projects).where(eq(projects.ref, project.ref));
    expect(p?.appliedVersion).toBe(0);
  });

  it("forgets a connection API Gateway reports gone (410)", async () => {
    const host = await connectedHost();
    rt.standIn.gone.add(host.conn);
    await rt.hub.kick(host.hostId);
    const project = await createProjectViaApi(t, admin, org);
    await rt.deps.database.db.update(projects).set({ hostId: host.hostId }).where(eq(projects.ref, project.ref));
    await rt.hub.kick(host.hostId);
    expect((await hostRow(host.hostId))?.connectionId).toBeNull();
    expect(await rt.hub.isConnected(host.hostId)).toBe(false);
  });
});

describe("RPC through the Postgres mailbox", () => {
  async function projectOn(hostId: string) {
    const project = await createProjectViaApi(t, admin, org);
    await rt.deps.database.db.update(projects).set({ hostId }).where(eq(projects.ref, project.ref));
    return project.ref;
  }

  /** Start GET /platform/projects/{ref}/logs through the HTTP handler and wait for its rpc frame. */
  async function logsRequest(host: { conn: string }, ref: string) {
    const pending = t.request(`/platform/projects/${ref}/logs?tail=5`, { token: admin.token });
    const deadline = Date.now() + 5000;
    for (;;) {
      const rpc = ofType(rt.standIn.framesTo(host.conn), "rpc").find((r) => r.ref === ref);
      if (rpc) return { pending, rpc };
      if (Date.now() > deadline) throw new Error("no rpc frame was posted");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("an HTTP request waits while the agent's rpc_result arrives through $default", async () => {
    const host = await connectedHost();
    const ref = await projectOn(host.hostId);
    const { pending, rpc } = await logsRequest(host, ref);
    expect(rpc).toMatchObject({ service: "docker-logs", method: "GET", path: "/logs?tail=5" });
    // Clamped so the answer comes back within API Gateway's 29 s HTTP integration timeout.
    expect(rpc.timeoutMs).toBe(LAMBDA_RPC_MAX_TIMEOUT_MS);
    // The agent must answer within one API Gateway message (or say too_large).
    expect(rpc.maxResultBytes).toBe(LAMBDA_MAX_RPC_RESULT_BYTES);

    // Another host cannot answer it.
    const intruder = await connectedHost();
    const line = { service: "db", stream: "stdout", text: "ready" };
    await send(intruder.conn, frame({ type: "rpc_result", id: rpc.id, status: 200, body: { lines: [] } }));
    await send(host.conn, frame({ type: "rpc_result", id: rpc.id, status: 200, body: { lines: [line] } }));
    const res = await pending;
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ ref, lines: [line] });
    // The waiter cleaned up its row.
    expect(await rt.deps.database.db.select().from(agentRpcs).where(eq(agentRpcs.id, rpc.id))).toEqual([]);
  });

  it("a connection closed for a too-large answer (1009) fails the waiting request with 413 at once", async () => {
    const host = await connectedHost();
    const ref = await projectOn(host.hostId);
    const { pending } = await logsRequest(host, ref);
    const started = Date.now();
    await disconnect(host.conn, 1009, "Message too big");
    const res = await pending;
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toMatch(/API Gateway/);
    expect(Date.now() - started).toBeLessThan(LAMBDA_RPC_MAX_TIMEOUT_MS);
  });

  it("a host without a connection answers 503 without posting anything", async () => {
    const host = await connectedHost();
    const ref = await projectOn(host.hostId);
    await disconnect(host.conn);
    const posts = rt.standIn.posts.length;
    const res = await t.request(`/platform/projects/${ref}/logs?tail=5`, { token: admin.token });
    expect(res.status).toBe(503);
    expect(rt.standIn.posts.length).toBe(posts);
  });
});

describe("$disconnect", () => {
  it("clears the connection id; a stale disconnect does not clear a newer connection", async () => {
    const host = await connectedHost();
    const newer = connectionId();
    await connect(newer, host.credential);
    await disconnect(host.conn); // the replaced connection closing late
    expect((await hostRow(host.hostId))?.connectionId).toBe(newer);
    await disconnect(newer);
    expect((await hostRow(host.hostId))?.connectionId).toBeNull();
    expect(await rt.hub.isConnected(host.hostId)).toBe(false);
  });

  it("removing a host closes its connection through the management API", async () => {
    const host = await connectedHost();
    const res = await t.request(`/platform/fleet/hosts/${host.hostId}`, { method: "DELETE", token: admin.token });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    expect(rt.standIn.deletes).toContain(host.conn);
    expect((await hostRow(host.hostId))?.connectionId).toBeNull();
  });

  it("refuses events that are not API Gateway WebSocket events", async () => {
    expect((await rt.agent({ hello: "world" })).statusCode).toBe(400);
  });
});
