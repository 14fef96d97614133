import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeServerFrame, PROTOCOL_VERSION, type ServerFrame } from "@supamanager/shared";
import { sql } from "drizzle-orm";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { agentRpcs } from "../../db/schema.js";
import { createNodeServer } from "../../entry/agent-socket.js";
import { ApiError } from "../../errors.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { capacity, type JoinedHost, joinHost } from "../../test-support/fleet-factory.js";
import { createReplicaTestApps, type TestApp } from "../../test-support/harness.js";
import { createOrg, TEST_DB_PASS, type TestOrg } from "../../test-support/projects-factory.js";
import { FLEET_CHANNEL } from "./replicated-hub.js";

/**
 * Two control-plane replicas (each its own pool, LISTEN connection and Node server) on ONE
 * PostgreSQL database, with agents speaking the real protocol over real WebSockets to one of
 * them: work and RPCs triggered on the other replica must reach them (ADR 0014).
 */

interface Replica {
  t: TestApp;
  server: Server;
  base: string;
}

let A: Replica;
let B: Replica;
let admin: TestUser;
let org: TestOrg;

async function serve(t: TestApp): Promise<Replica> {
  const server = createNodeServer(t.app).server;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { t, server, base: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function setUp(hubOptions: Parameters<typeof createReplicaTestApps>[2] = {}) {
  const [a, b] = await createReplicaTestApps(2, { SUPAMANAGER_ALLOW_SIGNUP: "true" }, hubOptions);
  if (!a || !b) throw new Error("expected two replicas");
  A = await serve(a);
  B = await serve(b);
  admin = await signUpAndLogin(B.t);
  org = await createOrg(B.t, admin);
}

/** Every agent socket of the test, terminated afterwards (the HTTP server cannot close while one is open). */
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const r of [A, B]) {
    if (!r) continue;
    r.server.closeAllConnections();
    await new Promise((resolve) => r.server.close(resolve));
    await r.t.close();
  }
});

/** An agent speaking frames over a real WebSocket; answers `rpc` frames with `answer`. */
class FakeAgent {
  readonly frames: { frame: ServerFrame; at: number }[] = [];
  closed: { code: number; reason: string } | undefined;
  answer: ((rpc: Extract<ServerFrame, { type: "rpc" }>) => Record<string, unknown> | null) | undefined;
  constructor(readonly ws: WebSocket) {
    sockets.push(ws);
    ws.on("message", (data) => {
      const d = decodeServerFrame(data.toString());
      if (!d.ok) return;
      this.frames.push({ frame: d.frame, at: performance.now() });
      if (d.frame.type === "rpc" && this.answer) {
        const a = this.answer(d.frame);
        if (a) this.send({ type: "rpc_result", id: d.frame.id, ...a });
      }
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
  }
  static async connect(replica: Replica, credential: string): Promise<FakeAgent> {
    const ws = new WebSocket(`ws://${replica.base}/agent/v1/connect`, {
      headers: { authorization: `Bearer ${credential}` },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const agent = new FakeAgent(ws);
    agent.send({
      type: "hello",
      agentVersion: "0.1.0",
      hostname: "h",
      compose: "v1",
      capacity: capacity(),
      inventory: [],
    });
    await agent.waitFor((f) => f.type === "welcome");
    return agent;
  }
  send(frame: Record<string, unknown>) {
    this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...frame }));
  }
  of(type: ServerFrame["type"]) {
    return this.frames.filter((f) => f.frame.type === type);
  }
  async waitFor(pred: (f: ServerFrame) => boolean, n = 1, ms = 5000): Promise<{ frame: ServerFrame; at: number }> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.filter((f) => pred(f.frame));
      if (found.length >= n) return found[n - 1] as { frame: ServerFrame; at: number };
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) while waiting`);
      if (Date.now() > deadline) {
        throw new Error(`timed out; got ${JSON.stringify(this.frames.map((f) => f.frame.type))}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  async waitClosed(ms = 5000) {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("socket did not close");
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.closed;
  }
}

const applyFor = (ref: string) => (f: ServerFrame) => f.type === "apply" && f.ref === ref;

/** A host enrolled through B's API whose agent is connected to A. */
async function agentOnA(): Promise<{ host: JoinedHost; agent: FakeAgent }> {
  const host = await joinHost(B.t, admin);
  const agent = await FakeAgent.connect(A, host.credential);
  expect(A.t.hub.has(host.hostId)).toBe(true);
  expect(B.t.hub.has(host.hostId)).toBe(false);
  // B does not hold it, but the host's liveness (last_seen_at) says some replica does.
  expect(await B.t.deps.hub.isConnected(host.hostId)).toBe(true);
  return { host, agent };
}

async function createProjectVia(r: Replica): Promise<{ ref: string; respondedAt: number }> {
  const res = await r.t.request("/platform/projects", {
    method: "POST",
    token: admin.token,
    json: { name: "P", organization_slug: org.slug, db_pass: TEST_DB_PASS, db_region: "local" },
  });
  const respondedAt = performance.now();
  expect(res.status, await res.clone().text()).toBe(201);
  return { ref: ((await res.json()) as { ref: string }).ref, respondedAt };
}

async function makeHealthy(agent: FakeAgent, ref: string) {
  agent.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  agent.send({
    type: "health",
    ref,
    services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
  });
  const deadline = Date.now() + 5000;
  for (;;) {
    const res = await B.t.request(`/platform/projects/${ref}/status`, { token: admin.token });
    if (((await res.json()) as { status: string }).status === "ACTIVE_HEALTHY") return;
    if (Date.now() > deadline) throw new Error("project did not become ACTIVE_HEALTHY");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rpcRequest = (ref: string, timeoutMs = 10_000) => ({
  ref,
  service: "meta",
  method: "POST" as const,
  path: "/query",
  headers: {},
  body: { query: "select 1" },
  timeoutMs,
});

async function rpcRows(t: TestApp): Promise<number> {
  return (await t.deps.database.db.select({ id: agentRpcs.id }).from(agentRpcs)).length;
}

describe("ReplicatedHub: kicks", () => {
  beforeEach(() => setUp());

  it("a project created through B is applied by the agent connected to A", async () => {
    const { agent } = await agentOnA();
    const { ref, respondedAt } = await createProjectVia(B);
    const apply = await agent.waitFor(applyFor(ref));
    expect(apply.frame).toMatchObject({ type: "apply", ref, version: 1, desiredState: "running" });
    console.info(`[replicated-hub] kick B → agent on A: ${(apply.at - respondedAt).toFixed(1)} ms after B's response`);

    // Further kicks (pause through B) arrive too, once each.
    await makeHealthy(agent, ref);
    const res = await B.t.request(`/platform/projects/${ref}/pause`, { method: "POST", token: admin.token });
    const pausedAt = performance.now();
    expect(res.status).toBe(200);
    const pause = await agent.waitFor(applyFor(ref), 2);
    expect(pause.frame).toMatchObject({ version: 2, desiredState: "paused" });
    console.info(`[replicated-hub] pause via B → apply on A: ${(pause.at - pausedAt).toFixed(1)} ms`);
    await new Promise((r) => setTimeout(r, 200));
    expect(agent.of("apply")).toHaveLength(2);
  });

  it("a kick on the replica holding the socket is local (no notification round trip)", async () => {
    const host = await joinHost(B.t, admin);
    const agent = await FakeAgent.connect(B, host.credential);
    const { ref, respondedAt } = await createProjectVia(B);
    const apply = await agent.waitFor(applyFor(ref));
    console.info(`[replicated-hub] local kick on B → agent on B: ${(apply.at - respondedAt).toFixed(1)} ms`);
    expect(B.t.logs.some((l) => l.includes("fleet notification failed"))).toBe(false);
  });

  it("removing the host through B closes its socket on A with code 4001", async () => {
    const { host, agent } = await agentOnA();
    const res = await B.t.request(`/platform/fleet/hosts/${host.hostId}?force=true`, {
      method: "DELETE",
      token: admin.token,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await agent.waitClosed()).code).toBe(4001);
    expect(A.t.hub.has(host.hostId)).toBe(false);
  });

  it("an agent reconnecting to B replaces (closes) its older socket on A", async () => {
    const { host, agent } = await agentOnA();
    // Wait for A's announcement to come back with the database time before the newer one.
    await new Promise((r) => setTimeout(r, 100));
    const again = await FakeAgent.connect(B, host.credential);
    expect((await agent.waitClosed()).code).toBe(4000);
    expect(A.t.hub.has(host.hostId)).toBe(false);
    expect(B.t.hub.has(host.hostId)).toBe(true);
    // ...and A's kicks now reach the new socket through B.
    const { ref } = await createProjectVia(A);
    await again.waitFor(applyFor(ref));
  });

  it("ignores notifications on its channel that are not its own protocol", async () => {
    const { agent } = await agentOnA();
    await A.t.deps.database.db.execute(sql`select pg_notify(${FLEET_CHANNEL}, ${"not json"})`);
    await A.t.deps.database.db.execute(
      sql`select pg_notify(${FLEET_CHANNEL}, ${JSON.stringify({ op: "explode", hostId: "x" })})`,
    );
    const { ref } = await createProjectVia(B);
    await agent.waitFor(applyFor(ref));
    expect(A.t.logs.filter((l) => l.includes("ignored an invalid fleet notification"))).toHaveLength(2);
  });
});

describe("ReplicatedHub: RPCs", () => {
  beforeEach(() => setUp());

  it("a pg-meta query on B is answered by the agent held by A", async () => {
    const { agent } = await agentOnA();
    const { ref } = await createProjectVia(B);
    await agent.waitFor(applyFor(ref));
    await makeHealthy(agent, ref);
    agent.answer = (rpc) => ({ status: 200, body: [{ path: rpc.path }], contentType: "application/json" });
    const started = performance.now();
    const res = await B.t.request(`/platform/pg-meta/${ref}/query`, {
      method: "POST",
      token: admin.token,
      json: { query: "select 1 as one" },
    });
    const took = performance.now() - started;
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toEqual([{ path: expect.stringMatching(/^\/pg\/query/) }]);
    console.info(`[replicated-hub] pg-meta query B → A → agent → B: ${took.toFixed(1)} ms`);
    const rpcs = agent.of("rpc");
    expect(rpcs).toHaveLength(1);
    expect(rpcs[0]?.frame).toMatchObject({ ref, service: "gateway", method: "POST" });
    // The rendezvous row is gone once the answer was taken.
    expect(await rpcRows(B.t)).toBe(0);
  });

  it("relays the holder's errors: an unanswered rpc times out as 504 on the requester", async () => {
    const { host, agent } = await agentOnA();
    agent.answer = () => null;
    const err = await B.t.deps.hub.rpc(host.hostId, rpcRequest("abcdefghijklmnopqrst", 200)).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(504);
    expect((err as ApiError).message).toMatch(/did not answer within/);
    expect(await rpcRows(B.t)).toBe(0);
  });

  it("an agent's own error codes pass through unchanged, and cannot pose as relayed errors", async () => {
    const { host, agent } = await agentOnA();
    agent.answer = () => ({ error: "connection refused", code: "unreachable" });
    const r1 = await B.t.deps.hub.rpc(host.hostId, rpcRequest("abcdefghijklmnopqrst"));
    expect(r1).toMatchObject({ error: "connection refused", code: "unreachable" });
    agent.answer = () => ({ error: "spoof", code: "relay:unavailable" });
    const r2 = await B.t.deps.hub.rpc(host.hostId, rpcRequest("abcdefghijklmnopqrst"));
    expect(r2).toMatchObject({ error: "spoof" });
    expect(r2.code).toBeUndefined();
  });

  it("an rpc for a host nobody holds fails with 503 after the claim deadline, not the request timeout", async () => {
    const host = await joinHost(B.t, admin);
    expect(await B.t.deps.hub.isConnected(host.hostId)).toBe(false);
    const started = performance.now();
    const err = await B.t.deps.hub.rpc(host.hostId, rpcRequest("abcdefghijklmnopqrst", 300_000)).catch((e) => e);
    console.info(`[replicated-hub] rpc to an unheld host: 503 after ${(performance.now() - started).toFixed(0)} ms`);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(503);
    expect(await rpcRows(B.t)).toBe(0);
  }, 15_000);

  it("a notification naming another host cannot make that host's agent answer someone else's rpc", async () => {
    const { host: held, agent } = await agentOnA();
    agent.answer = () => ({ status: 200, body: "from the wrong host", contentType: "text/plain" });
    const other = await joinHost(B.t, admin);
    // A forger on the channel: every rpc notification for `other` is re-sent naming `held`.
    const forger = new pg.Client({ connectionString: A.t.databaseUrl });
    await forger.connect();
    let forged = 0;
    forger.on("notification", (msg) => {
      const n = JSON.parse(msg.payload ?? "{}") as { op?: string; hostId?: string; id?: string };
      if (n.op === "rpc" && n.hostId === other.hostId) {
        forged++;
        void forger.query("select pg_notify($1, $2)", [
          FLEET_CHANNEL,
          JSON.stringify({ op: "rpc", from: "forger", hostId: held.hostId, id: n.id }),
        ]);
      }
    });
    await forger.query(`listen ${FLEET_CHANNEL}`);
    try {
      const err = await B.t.deps.hub.rpc(other.hostId, rpcRequest("abcdefghijklmnopqrst")).catch((e) => e);
      expect(forged).toBe(1);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(503);
      expect(agent.of("rpc")).toHaveLength(0);
    } finally {
      await forger.end();
    }
  }, 15_000);
});

describe("ReplicatedHub: the LISTEN connection", () => {
  beforeEach(() => setUp({ reconnectBaseMs: 2_000, reconnectCapMs: 2_000, safetyKickMs: 0 }));

  it("reconnects after its backend is terminated and delivers what was notified meanwhile", async () => {
    const { agent } = await agentOnA();
    const hubA = A.t.replicated;
    if (!hubA) throw new Error("A has no replicated hub");
    await A.t.deps.database.db.execute(
      sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${`supamanager-fleet-${hubA.replicaId}`}`,
    );
    const deadline = Date.now() + 5000;
    while (hubA.listening) {
      if (Date.now() > deadline) throw new Error("A did not notice its listener died");
      await new Promise((r) => setTimeout(r, 10));
    }
    // Notified while A is not listening: this NOTIFY reaches nobody.
    const { ref } = await createProjectVia(B);
    expect(agent.of("apply")).toHaveLength(0);
    await hubA.whenListening();
    // The catch-up kick after the reconnect sends it (the safety kick is off in this test).
    await agent.waitFor(applyFor(ref), 1, 5000);
    expect(A.t.logs.some((l) => l.includes("fleet listener reconnected"))).toBe(true);
    // And notifications flow again.
    const next = await createProjectVia(B);
    await agent.waitFor(applyFor(next.ref));
  }, 20_000);
});

describe("ReplicatedHub: the safety kick (ADR 0048)", () => {
  beforeEach(() => setUp({ safetyKickMs: 300 }));

  it("reaches only held hosts with work a kick could send, and delivers a change whose notification was lost", async () => {
    const busy = await agentOnA();
    const quiet = await agentOnA();
    const hubA = A.t.replicated;
    if (!hubA) throw new Error("A has no replicated hub");
    const { ref } = await createProjectVia(B);
    // The project went to one of the two hosts: that one holds it, the other stays idle.
    const placed = Date.now() + 5000;
    while (busy.agent.of("apply").length + quiet.agent.of("apply").length === 0) {
      if (Date.now() > placed) throw new Error("no apply reached either agent");
      await new Promise((r) => setTimeout(r, 10));
    }
    const [holder, idle] = busy.agent.of("apply").length > 0 ? [busy, quiet] : [quiet, busy];
    await makeHealthy(holder.agent, ref);

    // Settled: both connections reconciled after their last report; the safety kick does not
    // need to reach them unless the database shows work.
    const deadline = Date.now() + 5000;
    while (A.t.hub.unsettledHostIds().length > 0) {
      if (Date.now() > deadline) throw new Error(`still unsettled: ${A.t.hub.unsettledHostIds()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const kicked: string[] = [];
    const kickLocal = A.t.hub.kickLocal.bind(A.t.hub);
    A.t.hub.kickLocal = (hostId: string) => {
      kicked.push(hostId);
      return kickLocal(hostId);
    };
    await new Promise((r) => setTimeout(r, 700));
    expect(kicked).toEqual([]);

    // A change committed without its NOTIFY (a sender that died after its commit): only the
    // safety kick can deliver it, and it kicks only the host that has it.
    await A.t.deps.database.db.execute(
      sql`update projects set spec_version = spec_version + 1, desired_state = 'paused' where ref = ${ref}`,
    );
    const pause = await holder.agent.waitFor(applyFor(ref), 2, 5000);
    expect(pause.frame).toMatchObject({ version: 2, desiredState: "paused" });
    expect(kicked).toContain(holder.host.hostId);
    expect(kicked).not.toContain(idle.host.hostId);
    expect(idle.agent.of("apply")).toHaveLength(0);
  }, 20_000);
});
