import { PROTOCOL_VERSION, type RpcResult } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../../errors.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { enrollHost } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { HostSession, LINK_MISSED_PINGS, LINK_PING_MS, LINK_PROBE_MS } from "./session.js";

/**
 * A dead agent link (issue 14, item 10): on a transport that can ping, an RPC on a link that no
 * longer answers fails with 503 within LINK_PROBE_MS instead of waiting out its timeout, and a link
 * silent for LINK_MISSED_PINGS pings is cut so the host reads offline.
 */

let t: TestApp;
let admin: TestUser;

beforeEach(async () => {
  t = await createTestApp();
  admin = await signUpAndLogin(t);
});
afterEach(async () => {
  vi.useRealTimers();
  await t.close();
});

/** A welcomed session on a transport whose peer answers pings only while `alive.value`. */
async function session(alive: { value: boolean }) {
  const host = await enrollHost(t, admin);
  await host.conn.settle();
  host.conn.session.closed();
  const sent: string[] = [];
  const events = { pings: 0, terminated: 0 };
  const s: HostSession = new HostSession(
    t.deps,
    host.hostId,
    {
      send: (text) => sent.push(text),
      close: () => s.closed(),
      ping: () => {
        events.pings++;
        if (alive.value) queueMicrotask(() => s.heard());
      },
      terminate: () => {
        events.terminated++;
      },
    },
    t.hub,
    { resumeReady: true },
  );
  return { s, sent, events, hostId: host.hostId };
}

const request = { ref: "abcdefghijklmnopqrst", service: "gateway", method: "GET" as const, path: "/x", headers: {} };

describe("agent link liveness", () => {
  it("an RPC on a link that answers no ping fails with 503 within the probe window", async () => {
    const { s } = await session({ value: false });
    const started = Date.now();
    const err = await s.rpc({ ...request, timeoutMs: 60_000 }).catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(503);
    expect((err as ApiError).message).toMatch(/host is not answering: its agent's link has been silent/);
    expect(took).toBeGreaterThanOrEqual(LINK_PROBE_MS - 50);
    expect(took).toBeLessThan(2_000);
    expect(s.pendingRpcs).toBe(0);
  });

  it("an RPC on a live link waits for its answer past the probe window", async () => {
    const { s, sent } = await session({ value: true });
    const answer = s.rpc({ ...request, timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, LINK_PROBE_MS + 300));
    const frame = JSON.parse(sent.at(-1) as string) as { id: string };
    await s.receive(JSON.stringify({ v: PROTOCOL_VERSION, type: "rpc_result", id: frame.id, status: 200, body: [] }));
    expect((await answer) as RpcResult).toMatchObject({ status: 200 });
  });

  it("a link that sends frames between ticks is not pinged; a quiet tick pings (ADR 0042)", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { s, events, hostId } = await session({ value: true });
    for (let tick = 0; tick < LINK_MISSED_PINGS + 3; tick++) {
      s.heard(); // a heartbeat or any other frame
      vi.advanceTimersByTime(LINK_PING_MS);
    }
    expect(events.pings).toBe(0);
    expect(events.terminated).toBe(0);
    vi.advanceTimersByTime(LINK_PING_MS);
    expect(events.pings).toBe(1);
    expect(await t.deps.hub.isConnected(hostId)).toBe(true);
  });

  it("a link silent for several pings is cut and the host is no longer connected", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const alive = { value: true };
    const { s, events, hostId } = await session(alive);
    vi.advanceTimersByTime(LINK_PING_MS * 2);
    await Promise.resolve();
    expect(events.pings).toBe(2);
    expect(await t.deps.hub.isConnected(hostId)).toBe(true);
    alive.value = false;
    vi.advanceTimersByTime(LINK_PING_MS * (LINK_MISSED_PINGS + 1));
    expect(events.terminated).toBe(1);
    expect(s.ready).toBe(false);
    expect(await t.deps.hub.isConnected(hostId)).toBe(false);
  });
});
