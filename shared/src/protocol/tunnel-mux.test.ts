import { describe, expect, it } from "vitest";
import {
  decodeTunnelFrame,
  encodeTunnelFrame,
  encodeTunnelJson,
  TUNNEL_FRAME,
  TUNNEL_MAX_DATA_BYTES,
  type TunnelOpen,
  type TunnelReset,
} from "./tunnel.js";
import { TunnelMux, type TunnelStream, TunnelStreamClosed } from "./tunnel-mux.js";

const OPEN: TunnelOpen = {
  ref: "abcdefghijklmnopqrst",
  method: "POST",
  path: "/rest/v1/x?y=1",
  headers: [],
  upgrade: false,
};
const tick = () => new Promise((r) => setImmediate(r));

/** Two muxes joined in memory (frames delivered asynchronously, like a socket), counting bytes sent. */
function pair(opts: { window?: number; maxStreams?: number } = {}, serve?: (stream: TunnelStream) => void) {
  const accepted: { stream: TunnelStream; open: TunnelOpen }[] = [];
  const errors: string[] = [];
  const wire = { toAgent: 0, toCp: 0 };
  const ends: { agent?: TunnelMux } = {};
  const cp = new TunnelMux({
    ...opts,
    send: (f) => {
      wire.toAgent += f.byteLength;
      setImmediate(() => ends.agent?.receive(f));
    },
    onProtocolError: (m) => errors.push(`cp: ${m}`),
  });
  const agent = new TunnelMux({
    ...opts,
    send: (f) => {
      wire.toCp += f.byteLength;
      setImmediate(() => cp.receive(f));
    },
    onOpen: (stream, open) => {
      accepted.push({ stream, open });
      serve?.(stream);
    },
    onProtocolError: (m) => errors.push(`agent: ${m}`),
  });
  ends.agent = agent;
  return { cp, agent, accepted, errors, wire };
}

/** Collect what arrives on `s`, granting credit at once (a fast consumer) unless told otherwise. */
function sink(s: TunnelStream, consume = true) {
  const got = { bytes: 0, chunks: [] as Uint8Array[], ended: false, reset: undefined as TunnelReset | undefined };
  s.onData = (c) => {
    got.bytes += c.byteLength;
    got.chunks.push(c);
    if (consume) s.consumed(c.byteLength);
  };
  s.onEnd = () => {
    got.ended = true;
  };
  s.onReset = (r) => {
    got.reset = r;
  };
  return got;
}

const filled = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe("tunnel frames", () => {
  it("round-trips the fixed header and refuses malformed frames", () => {
    const f = encodeTunnelFrame(TUNNEL_FRAME.data, 0xfffffffe, new Uint8Array([1, 2, 3]));
    expect(f.byteLength).toBe(8);
    const d = decodeTunnelFrame(f);
    expect(d).toMatchObject({ ok: true, frame: { type: TUNNEL_FRAME.data, stream: 0xfffffffe } });
    expect(decodeTunnelFrame(new Uint8Array([3, 0, 0]))).toMatchObject({ ok: false });
    expect(decodeTunnelFrame(new Uint8Array([99, 0, 0, 0, 1]))).toMatchObject({
      ok: false,
      error: /unknown frame type/,
    });
    expect(
      decodeTunnelFrame(encodeTunnelFrame(TUNNEL_FRAME.data, 1, new Uint8Array(TUNNEL_MAX_DATA_BYTES + 1))),
    ).toMatchObject({ ok: false, error: /over/ });
    expect(decodeTunnelFrame(encodeTunnelFrame(TUNNEL_FRAME.window, 1, new Uint8Array(2)))).toMatchObject({
      ok: false,
    });
  });
});

describe("TunnelMux", () => {
  it("carries a request and its response both ways, in order, with end on each side", async () => {
    let request: ReturnType<typeof sink> | undefined;
    const { cp, accepted } = pair({}, (stream) => {
      request = sink(stream);
    });
    const s = cp.open(OPEN);
    const response = sink(s);
    let head: unknown;
    s.onHead = (h) => {
      head = h;
    };
    const body = filled(300_000, 1);
    await s.write(body);
    s.end();
    await tick();
    const served = accepted[0];
    if (!served) throw new Error("no stream reached the agent");
    expect(served.open).toEqual(OPEN);
    await new Promise((r) => setTimeout(r, 20));
    if (!request) throw new Error("no sink");
    expect(Buffer.concat(request.chunks).equals(Buffer.from(body))).toBe(true);
    expect(request.ended).toBe(true);
    served.stream.sendHead({
      status: 201,
      headers: [
        ["set-cookie", "a=1"],
        ["set-cookie", "b=2"],
      ],
    });
    await served.stream.write(filled(1000, 2));
    served.stream.end();
    await new Promise((r) => setTimeout(r, 20));
    expect(head).toEqual({
      status: 201,
      headers: [
        ["set-cookie", "a=1"],
        ["set-cookie", "b=2"],
      ],
    });
    expect(response.bytes).toBe(1000);
    expect(response.ended).toBe(true);
    // Both sides ended: the stream is gone from both muxes.
    expect(cp.size).toBe(0);
  });

  it("never sends more than the window before the receiver consumes (flow control)", async () => {
    const window = 64 * 1024;
    const { cp, accepted } = pair({ window });
    const s = cp.open(OPEN);
    let done = false;
    const writing = s.write(filled(1024 * 1024, 3)).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    const served = accepted[0];
    if (!served) throw new Error("no stream");
    const got = sink(served.stream, false); // a consumer that does not read yet
    await new Promise((r) => setTimeout(r, 30));
    // Nothing arrived before the handler was set, and the sender stopped at its window.
    expect(s.sendWindow).toBe(0);
    expect(done).toBe(false);
    served.stream.consumed(window); // the consumer passes everything on
    await new Promise((r) => setTimeout(r, 30));
    expect(s.sendWindow).toBe(0); // it sent exactly one more window
    expect(got.bytes).toBeLessThanOrEqual(window);
    // A fast consumer from now on: the rest flows.
    served.stream.onData = (c) => {
      got.bytes += c.byteLength;
      served.stream.consumed(c.byteLength);
    };
    served.stream.consumed(window);
    await writing;
    expect(done).toBe(true);
  });

  it("send() sends what the credit allows, holds the rest in order, and calls onDrain once it went", async () => {
    const window = 64 * 1024;
    const { cp, accepted } = pair({ window });
    const s = cp.open(OPEN);
    await tick();
    const served = accepted[0];
    if (!served) throw new Error("no stream");
    const got = sink(served.stream, false);
    let drains = 0;
    s.onDrain = () => {
      drains += 1;
    };
    const first = filled(48 * 1024, 7);
    const second = filled(48 * 1024, 8);
    expect(s.send(first)).toBe(true);
    expect(s.send(second)).toBe(false); // 16 KiB of it went, 32 KiB wait for credit
    expect(s.heldBytes).toBe(32 * 1024);
    expect(s.send(filled(1, 9))).toBe(false); // queued behind, not reordered
    s.end(); // after what is held
    await tick();
    expect(got.bytes).toBe(window);
    expect(got.ended).toBe(false);
    served.stream.consumed(window);
    await tick();
    await tick();
    expect(drains).toBe(1);
    expect(s.heldBytes).toBe(0);
    const all = Buffer.concat(got.chunks);
    expect(all.byteLength).toBe(96 * 1024 + 1);
    expect(all.equals(Buffer.concat([first, second, filled(1, 9)]))).toBe(true);
    expect(got.ended).toBe(true);
    // A closed stream takes nothing and throws nothing (send may run in a readable's 'data' handler).
    const t = cp.open(OPEN);
    t.reset("cancelled", "gone");
    expect(t.send(filled(10, 1))).toBe(false);
  });

  it("a stalled stream does not hold back the others", async () => {
    const window = 32 * 1024;
    const { cp, accepted } = pair({ window });
    const slow = cp.open(OPEN);
    const fast = cp.open({ ...OPEN, method: "GET" });
    await tick();
    const [slowServed, fastServed] = accepted;
    if (!slowServed || !fastServed) throw new Error("streams missing");
    sink(slowServed.stream, false); // never consumes
    const fastGot = sink(fastServed.stream);
    let slowDone = false;
    void slow.write(filled(1024 * 1024, 4)).then(
      () => {
        slowDone = true;
      },
      () => {},
    );
    const started = Date.now();
    await fast.write(filled(4 * 1024 * 1024, 5));
    fast.end();
    await new Promise((r) => setTimeout(r, 30));
    expect(fastGot.bytes).toBe(4 * 1024 * 1024);
    expect(fastGot.ended).toBe(true);
    expect(slowDone).toBe(false);
    expect(Date.now() - started).toBeLessThan(5_000);
    slow.reset("cancelled", "test over");
  });

  it("limits streams on both sides", async () => {
    const { cp, agent, accepted, wire } = pair({ maxStreams: 2 });
    cp.open(OPEN);
    cp.open(OPEN);
    expect(() => cp.open(OPEN)).toThrow(TunnelStreamClosed);
    await tick();
    expect(accepted).toHaveLength(2);
    // An initiator that ignores the limit has the extra stream refused by the receiver.
    const before = wire.toCp;
    agent.receive(encodeTunnelJson(TUNNEL_FRAME.open, 99, OPEN));
    await tick();
    expect(wire.toCp).toBeGreaterThan(before); // a RESET went back
    expect(accepted).toHaveLength(2);
  });

  it("resets a stream whose peer sends beyond its window, or an invalid open", async () => {
    const accepted: { stream: TunnelStream; open: TunnelOpen }[] = [];
    const sent: Uint8Array[] = [];
    const lone = new TunnelMux({
      send: (f) => sent.push(f),
      window: 1024,
      onOpen: (stream, open) => accepted.push({ stream, open }),
    });
    lone.receive(encodeTunnelJson(TUNNEL_FRAME.open, 7, OPEN));
    const got = sink(accepted[0]?.stream as TunnelStream, false);
    lone.receive(encodeTunnelFrame(TUNNEL_FRAME.data, 7, new Uint8Array(2048)));
    expect(got.bytes).toBe(0);
    const reset = decodeTunnelFrame(sent.at(-1) as Uint8Array);
    expect(reset.ok && reset.frame.type).toBe(TUNNEL_FRAME.reset);
    expect(Buffer.from((reset.ok && reset.frame.payload) || []).toString()).toMatch(/beyond the granted window/);

    sent.length = 0;
    lone.receive(encodeTunnelFrame(TUNNEL_FRAME.open, 8, Buffer.from(JSON.stringify({ ...OPEN, ref: "NOT A REF" }))));
    const refused = decodeTunnelFrame(sent[0] as Uint8Array);
    expect(refused.ok && refused.frame.type).toBe(TUNNEL_FRAME.reset);
    expect(Buffer.from((refused.ok && refused.frame.payload) || []).toString()).toMatch(/protocol/);
  });

  it("fails every stream and pending write when the connection goes", async () => {
    const window = 16 * 1024;
    const { cp, accepted } = pair({ window });
    const a = cp.open(OPEN);
    const b = cp.open(OPEN);
    const gotA = sink(a);
    const gotB = sink(b);
    await tick();
    for (const x of accepted) sink(x.stream, false);
    const pending = a.write(filled(1024 * 1024, 6));
    await new Promise((r) => setTimeout(r, 20));
    cp.close("link cut");
    await expect(pending).rejects.toThrow(TunnelStreamClosed);
    expect(gotA.reset).toEqual({ code: "gone", message: "link cut" });
    expect(gotB.reset).toEqual({ code: "gone", message: "link cut" });
    expect(() => cp.open(OPEN)).toThrow(TunnelStreamClosed);
  });

  it("reports frames it cannot read as protocol errors instead of throwing", () => {
    const errors: string[] = [];
    const m = new TunnelMux({ send: () => {}, onProtocolError: (e) => errors.push(e) });
    m.receive(new Uint8Array([42, 0, 0, 0, 1]));
    m.receive(new Uint8Array([1]));
    expect(errors).toHaveLength(2);
  });
});
