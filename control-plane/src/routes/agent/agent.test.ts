import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeServerFrame, MAX_FRAME_BYTES, PROTOCOL_VERSION, type ServerFrame } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { hosts, portReservations, projects } from "../../db/schema.js";
import { createNodeServer } from "../../entry/agent-socket.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { capacity, GiB, type JoinedHost, joinHost } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { createOrg, TEST_DB_PASS, type TestOrg } from "../../test-support/projects-factory.js";

/**
 * Protocol-level tests: a real `ws` client against the Node server built the way entry/ builds
 * it, speaking frames as an agent would.
 */

let t: TestApp;
let admin: TestUser;
let org: TestOrg;
let server: Server;
let base: string;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  admin = await signUpAndLogin(t);
  org = await createOrg(t, admin);
  server = createNodeServer(t.app).server;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await t.close();
});

class FakeAgent {
  readonly frames: ServerFrame[] = [];
  readonly raw: string[] = [];
  closed: { code: number; reason: string } | undefined;
  #waiters: (() => void)[] = [];
  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const text = data.toString();
      this.raw.push(text);
      const d = decodeServerFrame(text);
      if (d.ok) this.frames.push(d.frame);
      for (const w of this.#waiters.splice(0)) w();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  static async connect(credential: string): Promise<FakeAgent> {
    const ws = new WebSocket(`ws://${base}/agent/v1/connect`, { headers: { authorization: `Bearer ${credential}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new FakeAgent(ws);
  }
  send(frame: Record<string, unknown>) {
    this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...frame }));
  }
  hello(inventory: unknown[] = [], memFree = 8 * GiB) {
    this.send({
      type: "hello",
      agentVersion: "0.1.0",
      hostname: "h",
      compose: "v1",
      capacity: capacity(memFree),
      inventory,
    });
  }
  /** Wait for the n-th frame matching `pred` (counting from the start of the connection). */
  async waitFor<T extends ServerFrame>(pred: (f: ServerFrame) => f is T, n = 1, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.filter(pred);
      if (found.length >= n) return found[n - 1] as T;
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) while waiting`);
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.frames.map((f) => f.type))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
  waitClosed(ms = 5000): Promise<{ code: number; reason: string }> {
    return (async () => {
      const deadline = Date.now() + ms;
      while (!this.closed) {
        if (Date.now() > deadline) throw new Error("socket did not close");
        await new Promise((r) => setTimeout(r, 20));
      }
      return this.closed;
    })();
  }
}

const isType =
  <K extends ServerFrame["type"]>(type: K, ref?: string) =>
  (f: ServerFrame): f is Extract<ServerFrame, { type: K }> =>
    f.type === type && (ref === undefined || (f as { ref?: string }).ref === ref);

async function status(ref: string): Promise<Record<string, unknown>> {
  const res = await t.request(`/platform/projects/${ref}`, { token: admin.token });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function createProject(region = "local"): Promise<string> {
  const res = await t.request("/platform/projects", {
    method: "POST",
    token: admin.token,
    json: { name: "P", organization_slug: org.slug, db_pass: TEST_DB_PASS, db_region: region },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { ref: string }).ref;
}

const healthy = (ref: string) => ({
  type: "health",
  ref,
  services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
});

async function until(check: () => Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 25));
  }
}

const statusIs = (ref: string, s: string) => async () => (await status(ref)).status === s;

async function onlineHost(region = "local"): Promise<{ host: JoinedHost; agent: FakeAgent }> {
  const host = await joinHost(t, admin, region);
  const agent = await FakeAgent.connect(host.credential);
  agent.hello();
  await agent.waitFor(isType("welcome"));
  return { host, agent };
}

describe("agent channel: the full lifecycle", () => {
  it("create → apply → applied + health → ACTIVE_HEALTHY; pause, restore, restart, delete", async () => {
    const { host, agent } = await onlineHost();
    const welcome = await agent.waitFor(isType("welcome"));
    expect(welcome).toMatchObject({ hostId: host.hostId, heartbeatIntervalMs: 15_000 });

    const ref = await createProject();
    const apply = await agent.waitFor(isType("apply", ref));
    expect(apply).toMatchObject({ ref, version: 1, desiredState: "running", restartNonce: 0 });
    expect(apply.stack?.requiredServices).toEqual(["db", "meta", "gateway"]);
    expect(apply.stack?.env.POSTGRES_PASSWORD).toBe(TEST_DB_PASS);
    expect(apply.stack?.composeFile).not.toContain(TEST_DB_PASS);
    expect((await status(ref)).status).toBe("COMING_UP");

    agent.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
    agent.send(healthy(ref));
    await until(statusIs(ref, "ACTIVE_HEALTHY"));

    // Pause
    let res = await t.request(`/platform/projects/${ref}/pause`, { method: "POST", token: admin.token });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ref, status: "PAUSING" });
    const pause = await agent.waitFor(isType("apply", ref), 2);
    expect(pause).toMatchObject({ version: 2, desiredState: "paused" });
    agent.send({ type: "applied", ref, version: 2, desiredState: "paused", ok: true });
    await until(statusIs(ref, "INACTIVE"));
    const ps = await (await t.request(`/platform/projects/${ref}/pause/status`, { token: admin.token })).json();
    expect(ps).toMatchObject({ can_restore: true, last_paused_on: new Date(t.clock.now()).toISOString() });

    // Restore
    res = await t.request(`/platform/projects/${ref}/restore`, { method: "POST", token: admin.token, json: {} });
    expect(await res.json()).toMatchObject({ status: "RESTORING" });
    expect(await agent.waitFor(isType("apply", ref), 3)).toMatchObject({ version: 3, desiredState: "running" });
    agent.send({ type: "applied", ref, version: 3, desiredState: "running", ok: true });
    expect((await status(ref)).status).toBe("RESTORING"); // not healthy until health says so
    agent.send(healthy(ref));
    await until(statusIs(ref, "ACTIVE_HEALTHY"));

    // Restart
    res = await t.request(`/platform/projects/${ref}/restart`, { method: "POST", token: admin.token });
    expect(await res.json()).toMatchObject({ status: "RESTARTING" });
    expect(await agent.waitFor(isType("apply", ref), 4)).toMatchObject({ version: 4, restartNonce: 1 });
    agent.send({ type: "applied", ref, version: 4, desiredState: "running", ok: true });
    agent.send(healthy(ref));
    await until(statusIs(ref, "ACTIVE_HEALTHY"));

    // Delete
    res = await t.request(`/platform/projects/${ref}`, { method: "DELETE", token: admin.token });
    expect(res.status).toBe(200);
    const del = await agent.waitFor(isType("apply", ref), 5);
    expect(del).toMatchObject({ version: 5, desiredState: "deleted" });
    expect(del.stack).toBeUndefined();
    agent.send({ type: "applied", ref, version: 5, desiredState: "deleted", ok: true });
    await until(async () => (await t.request(`/platform/projects/${ref}`, { token: admin.token })).status === 404);
    const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    expect(row?.status).toBe("REMOVED");
    expect(
      await t.deps.database.db.select().from(portReservations).where(eq(portReservations.projectRef, ref)),
    ).toEqual([]);
    agent.ws.close();
  });

  it("failures end in INIT_FAILED / PAUSE_FAILED / RESTORE_FAILED with the agent's reason", async () => {
    const { agent } = await onlineHost();
    const ref = await createProject();
    await agent.waitFor(isType("apply", ref));
    agent.send({ type: "applied", ref, version: 1, desiredState: "running", ok: false, error: "image missing" });
    await until(statusIs(ref, "INIT_FAILED"));
    expect(await status(ref)).toMatchObject({ status_reason: "image missing" });

    await t.request(`/platform/projects/${ref}/pause`, { method: "POST", token: admin.token });
    await agent.waitFor(isType("apply", ref), 2);
    agent.send({ type: "applied", ref, version: 2, desiredState: "paused", ok: false, error: "stop timed out" });
    await until(statusIs(ref, "PAUSE_FAILED"));
    expect(await status(ref)).toMatchObject({ status_reason: "stop timed out" });

    await t.request(`/platform/projects/${ref}/restore`, { method: "POST", token: admin.token });
    await agent.waitFor(isType("apply", ref), 3);
    agent.send({ type: "applied", ref, version: 3, desiredState: "running", ok: false, error: "port in use" });
    await until(statusIs(ref, "RESTORE_FAILED"));
    expect(await status(ref)).toMatchObject({ status_reason: "port in use" });
    agent.ws.close();
  });

  it("applying the same version twice is idempotent; results for an old version do not move the status", async () => {
    const { agent } = await onlineHost();
    const ref = await createProject();
    await agent.waitFor(isType("apply", ref));
    for (let i = 0; i < 2; i++) {
      agent.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
      agent.send(healthy(ref));
    }
    await until(statusIs(ref, "ACTIVE_HEALTHY"));
    await t.request(`/platform/projects/${ref}/pause`, { method: "POST", token: admin.token });
    await agent.waitFor(isType("apply", ref), 2);
    // A late duplicate for version 1 changes nothing.
    agent.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
    agent.send({ type: "applied", ref, version: 2, desiredState: "paused", ok: true });
    agent.send({ type: "applied", ref, version: 2, desiredState: "paused", ok: true });
    await until(statusIs(ref, "INACTIVE"));
    const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    expect(row).toMatchObject({ appliedVersion: 2, specVersion: 2, status: "INACTIVE" });
    // No further apply was sent for what is already applied.
    expect(agent.frames.filter(isType("apply", ref))).toHaveLength(2);
    agent.ws.close();
  });
});

describe("agent channel: bad input", () => {
  it("answers malformed, oversize and out-of-order frames with error frames and keeps the connection", async () => {
    const host = await joinHost(t, admin);
    const agent = await FakeAgent.connect(host.credential);
    const errors = () => agent.frames.filter(isType("error"));
    agent.send({ type: "heartbeat", capacity: capacity() }); // before hello
    await agent.waitFor(isType("error"), 1);
    expect(errors()[0]).toMatchObject({ code: "out_of_order" });
    agent.ws.send("{not json");
    await agent.waitFor(isType("error"), 2);
    expect(errors()[1]).toMatchObject({ code: "bad_frame" });
    agent.send({ type: "hello", agentVersion: "x" }); // missing fields
    await agent.waitFor(isType("error"), 3);
    expect(errors()[2]).toMatchObject({ code: "bad_frame" });
    agent.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, type: "heartbeat", pad: "x".repeat(MAX_FRAME_BYTES) }));
    await agent.waitFor(isType("error"), 4);
    expect(errors()[3]).toMatchObject({ code: "too_large" });
    agent.send({ type: "nonsense" });
    await agent.waitFor(isType("error"), 5);
    // Still alive: a proper hello is welcomed.
    agent.hello();
    await agent.waitFor(isType("welcome"));
    agent.hello();
    await agent.waitFor(isType("error"), 6);
    expect(errors()[5]).toMatchObject({ code: "out_of_order" });
    expect(agent.closed).toBeUndefined();
    agent.ws.close();
  });

  it("refuses an agent of an unsupported protocol version with an error frame saying what to upgrade, and hangs up", async () => {
    const host = await joinHost(t, admin);
    const agent = await FakeAgent.connect(host.credential);
    agent.ws.send(JSON.stringify({ v: PROTOCOL_VERSION + 1, type: "hello" }));
    expect((await agent.waitClosed()).code).toBe(4426);
    const [error] = agent.frames.filter(isType("error"));
    expect(error).toMatchObject({ code: "unsupported_version" });
    expect((error as { message: string }).message).toMatch(/upgrade this peer \(the control plane first/);
    const old = await FakeAgent.connect(host.credential);
    old.ws.send(JSON.stringify({ v: 0, type: "hello" }));
    expect((await old.waitClosed()).code).toBe(4426);
    expect((old.frames.filter(isType("error"))[0] as { message: string }).message).toMatch(
      /version 0 is too old: .*install a newer supamanager-agent/,
    );
  });

  it("a frame beyond the socket limit closes only that connection; other hosts keep working", async () => {
    const a = await onlineHost();
    const b = await onlineHost();
    a.agent.ws.send("x".repeat(2 * MAX_FRAME_BYTES + 1));
    expect((await a.agent.waitClosed()).code).toBe(1009);
    const ref = await createProject();
    // b still answers (the project may land on either host; b's link is alive either way)
    b.agent.send({ type: "heartbeat", capacity: capacity() });
    const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    expect(row?.hostId).toBeTruthy();
    expect(b.agent.closed).toBeUndefined();
    b.agent.ws.close();
  });

  it("a heartbeat flood is closed with 4029 and its reason on the wire; other hosts keep working", async () => {
    const a = await onlineHost();
    const b = await onlineHost();
    const heartbeat = JSON.stringify({ v: PROTOCOL_VERSION, type: "heartbeat", capacity: capacity() });
    for (let i = 0; i < 30_000 && !a.agent.closed; i++) a.agent.ws.send(heartbeat);
    const closed = await a.agent.waitClosed(15_000);
    expect(closed.code).toBe(4029);
    expect(closed.reason).toMatch(/^frame rate limit: more than 50 frames\/s/);
    b.agent.send({ type: "heartbeat", capacity: capacity() });
    const res = await t.request("/platform/projects", { token: admin.token });
    expect(res.status).toBe(200);
    expect(b.agent.closed).toBeUndefined();
    b.agent.ws.close();
  });

  it("refuses an unknown credential, and a garbage one, with 401 before upgrading", async () => {
    for (const credential of [`smh_${"a".repeat(40)}`, "nope"]) {
      const ws = new WebSocket(`ws://${base}/agent/v1/connect`, { headers: { authorization: `Bearer ${credential}` } });
      const status = await new Promise<number>((resolve) => {
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => resolve(101));
        ws.on("error", () => {});
      });
      expect(status).toBe(401);
    }
  });

  it("a plain GET (no upgrade) with a valid credential is a 400, without one a 401", async () => {
    const host = await joinHost(t, admin);
    const ok = await t.request("/agent/v1/connect", { token: host.credential });
    expect(ok.status).toBe(400);
    expect((await t.request("/agent/v1/connect")).status).toBe(401);
  });

  it("removing a host closes its socket and its credential is refused afterwards", async () => {
    const { host, agent } = await onlineHost();
    const res = await t.request(`/platform/fleet/hosts/${host.hostId}`, { method: "DELETE", token: admin.token });
    expect(res.status).toBe(200);
    expect((await agent.waitClosed()).code).toBe(4001);
    const again = new WebSocket(`ws://${base}/agent/v1/connect`, {
      headers: { authorization: `Bearer ${host.credential}` },
    });
    const status = await new Promise<number>((resolve) => {
      again.on("unexpected-response", (_req, r) => resolve(r.statusCode ?? 0));
      again.on("open", () => resolve(101));
      again.on("error", () => {});
    });
    expect(status).toBe(401);
    const [row] = await t.deps.database.db.select().from(hosts).where(eq(hosts.id, host.hostId));
    expect(row?.credentialHash).toBeNull();
    expect(row?.removedAt).not.toBeNull();
  });

  it("a newer connection for the same host replaces the older one", async () => {
    const { host, agent } = await onlineHost();
    const second = await FakeAgent.connect(host.credential);
    second.hello();
    await second.waitFor(isType("welcome"));
    expect((await agent.waitClosed()).code).toBe(4000);
    const ref = await createProject();
    await second.waitFor(isType("apply", ref));
    second.ws.close();
  });
});

describe("agent channel: offline hosts and reconnects", () => {
  it("a lifecycle request for an offline host waits (pending_reason) and is sent on reconnect", async () => {
    const { host, agent } = await onlineHost();
    const ref = await createProject();
    await agent.waitFor(isType("apply", ref));
    agent.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
    agent.send(healthy(ref));
    await until(statusIs(ref, "ACTIVE_HEALTHY"));
    agent.ws.close();
    await agent.waitClosed();
    t.clock.advance(t.deps.config.fleet.hostOfflineSeconds + 1);

    // Offline: never a stale "healthy".
    expect(await status(ref)).toMatchObject({ status: "UNKNOWN" });
    const list = (await (
      await t.request(`/platform/organizations/${org.slug}/projects`, { token: admin.token })
    ).json()) as {
      projects: { status: string }[];
    };
    expect(list.projects[0]?.status).toBe("UNKNOWN");
    const hostsRes = (await (await t.request("/platform/fleet/hosts", { token: admin.token })).json()) as {
      status: string;
    }[];
    expect(hostsRes[0]?.status).toBe("offline");

    const res = await t.request(`/platform/projects/${ref}/pause`, { method: "POST", token: admin.token });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "PAUSING", pending_reason: expect.stringMatching(/offline/) });
    expect(await status(ref)).toMatchObject({ status: "PAUSING", pending_reason: expect.stringMatching(/offline/) });

    // The agent comes back with its inventory (version 1 applied, running): the pause goes out.
    const back = await FakeAgent.connect(host.credential);
    back.hello([{ ref, appliedVersion: 1, state: "running" }]);
    expect(await back.waitFor(isType("apply", ref))).toMatchObject({ version: 2, desiredState: "paused" });
    const detail = await status(ref);
    expect(detail.pending_reason).toBeUndefined();
    back.send({ type: "applied", ref, version: 2, desiredState: "paused", ok: true });
    await until(statusIs(ref, "INACTIVE"));
    back.ws.close();
  });

  it("finishes a transition the agent completed while the control plane was not listening", async () => {
    const { host, agent } = await onlineHost();
    const ref = await createProject();
    await agent.waitFor(isType("apply", ref));
    agent.ws.close();
    await agent.waitClosed();
    // The agent applied version 1 but its `applied` was lost; its inventory says so on reconnect.
    const back = await FakeAgent.connect(host.credential);
    back.hello([{ ref, appliedVersion: 1, state: "running" }]);
    await back.waitFor(isType("welcome"));
    back.send(healthy(ref));
    await until(statusIs(ref, "ACTIVE_HEALTHY"));
    // Nothing to re-send.
    await new Promise((r) => setTimeout(r, 100));
    expect(back.frames.filter(isType("apply"))).toHaveLength(0);
    back.ws.close();
  });

  it("re-sends everything to a host that lost its state (empty inventory)", async () => {
    const { host, agent } = await onlineHost();
    const ref = await createProject();
    await agent.waitFor(isType("apply", ref));
    agent.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
    agent.ws.close();
    await agent.waitClosed();
    const back = await FakeAgent.connect(host.credential);
    back.hello([]);
    expect(await back.waitFor(isType("apply", ref))).toMatchObject({ version: 1 });
    back.ws.close();
  });
});
