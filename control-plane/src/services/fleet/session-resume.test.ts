import { decodeServerFrame, PROTOCOL_VERSION, type ServerFrame } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { enrollHost } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { createOrg, createProjectViaApi } from "../../test-support/projects-factory.js";
import { HostSession } from "./session.js";

/**
 * `resumeReady`: a Durable Object evicted while its hibernated socket stayed open re-creates the
 * session for the next frame; it must act as the welcomed session it replaces, without a hello.
 */

let t: TestApp;
let admin: TestUser;

beforeEach(async () => {
  t = await createTestApp();
  admin = await signUpAndLogin(t);
});
afterEach(async () => {
  await t.close();
});

function resumed(hostId: string, resumeReady: boolean) {
  const sent: ServerFrame[] = [];
  const session = new HostSession(
    t.deps,
    hostId,
    {
      send: (text) => {
        const d = decodeServerFrame(text);
        if (d.ok) sent.push(d.frame);
      },
      close: () => session.closed(),
    },
    t.hub,
    { resumeReady },
  );
  const send = (frame: Record<string, unknown>) => session.receive(JSON.stringify({ v: PROTOCOL_VERSION, ...frame }));
  return { session, sent, send };
}

describe("HostSession resumeReady", () => {
  it("starts ready and registered: kicks, heartbeats and rpcs work without a new hello", async () => {
    const host = await enrollHost(t, admin);
    const org = await createOrg(t, admin);
    const { ref } = await createProjectViaApi(t, admin, org);
    await host.conn.settle();
    // The object was evicted: its in-memory session is gone, the socket (here: a new transport) stays.
    host.conn.session.closed();
    expect(await t.deps.hub.isConnected(host.hostId)).toBe(false);

    const r = resumed(host.hostId, true);
    expect(r.session.ready).toBe(true);
    expect(await t.deps.hub.isConnected(host.hostId)).toBe(true);

    await r.send({
      type: "heartbeat",
      capacity: { cpus: 4, memTotalBytes: 1, memFreeBytes: 1, memReservedBytes: 0, load1: 0 },
    });
    expect(r.sent.filter((f) => f.type === "error")).toEqual([]);

    // What the lost instance had sent is not known here: a kick sends the pending apply again
    // (the agent applies by version, so a repeat is harmless).
    await t.deps.hub.kick(host.hostId);
    await r.session.idle();
    expect(r.sent.filter((f) => f.type === "apply")).toMatchObject([{ ref, version: 1, desiredState: "running" }]);

    const answer = t.deps.hub.rpc(host.hostId, {
      ref,
      service: "meta",
      method: "GET",
      path: "/tables",
      headers: {},
      timeoutMs: 5000,
    });
    const rpc = r.sent.find((f) => f.type === "rpc");
    expect(rpc).toBeDefined();
    await r.send({ type: "rpc_result", id: (rpc as { id: string }).id, status: 200, body: [] });
    expect(await answer).toMatchObject({ status: 200, body: [] });
  });

  it("without the option a session still waits for hello (Node's behaviour is unchanged)", async () => {
    const host = await enrollHost(t, admin);
    host.conn.session.closed();
    const r = resumed(host.hostId, false);
    expect(r.session.ready).toBe(false);
    expect(await t.deps.hub.isConnected(host.hostId)).toBe(false);
    await r.send({
      type: "heartbeat",
      capacity: { cpus: 4, memTotalBytes: 1, memFreeBytes: 1, memReservedBytes: 0, load1: 0 },
    });
    expect(r.sent).toMatchObject([{ type: "error", code: "out_of_order" }]);
  });
});
