import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type AgentFrame, decodeAgentFrame, type Hello, PROTOCOL_VERSION } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type WebSocket, WebSocketServer } from "ws";
import { FrameMeter } from "../../../test/support/ws-frames.js";
import { memoryLogger } from "../log.js";
import { MAX_OUTGOING_FRAGMENT_BYTES, Session, utf8Fragments } from "./session.js";

/** The agent's frames on the wire: long messages go out as fragments API Gateway accepts (ADR 0017). */

describe("utf8Fragments", () => {
  it("cuts at most `max` bytes per piece, never inside a character, and loses nothing", () => {
    const text = "aé€😀".repeat(1000); // 1, 2, 3 and 4 bytes per character
    for (const max of [4, 7, 64, 1000]) {
      const pieces = utf8Fragments(text, max);
      for (const p of pieces) {
        expect(p.length).toBeLessThanOrEqual(max);
        expect(p.toString("utf8")).not.toContain("\uFFFD");
      }
      expect(Buffer.concat(pieces).toString("utf8")).toBe(text);
    }
    expect(utf8Fragments("small", 64)).toHaveLength(1);
  });
});

let server: Server;
let wss: WebSocketServer;
let meter: FrameMeter;
let messages: { frame: AgentFrame; isBinary: boolean }[];
let peer: WebSocket | undefined;
let session: Session | undefined;
/** The control plane's side of each connection, in order (a test may cut one off). */
let sockets: Duplex[];
/** The heartbeat interval the control plane's welcome asks for. */
let welcomeEveryMs: number;

beforeEach(async () => {
  meter = new FrameMeter();
  messages = [];
  sockets = [];
  welcomeEveryMs = 60_000;
  wss = new WebSocketServer({ noServer: true });
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    meter.push(head);
    sockets.push(socket);
    socket.on("data", (chunk: Buffer) => meter.push(chunk));
    wss.handleUpgrade(req, socket, head, (ws) => {
      peer = ws;
      ws.on("message", (data, isBinary) => {
        const d = decodeAgentFrame((data as Buffer).toString("utf8"));
        if (!d.ok) throw new Error(d.error.message);
        messages.push({ frame: d.frame, isBinary });
        if (d.frame.type === "hello") {
          ws.send(
            JSON.stringify({
              v: PROTOCOL_VERSION,
              type: "welcome",
              hostId: "host_1",
              heartbeatIntervalMs: welcomeEveryMs,
            }),
          );
        }
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
});
afterEach(async () => {
  await session?.stop();
  session = undefined;
  peer = undefined;
  wss.close();
  for (const socket of sockets) socket.destroy(); // upgraded sockets are not the server's to close
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const hello: Hello = {
  v: PROTOCOL_VERSION,
  type: "hello",
  agentVersion: "test",
  hostname: "h",
  compose: "v2",
  capacity: { cpus: 1, memTotalBytes: 1, memFreeBytes: 1, memReservedBytes: 0, load1: 0 },
  inventory: [],
};

async function welcomed(logger = memoryLogger()): Promise<Session> {
  let onWelcome: () => void = () => {};
  const ready = new Promise<void>((r) => {
    onWelcome = r;
  });
  const s = new Session({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    credential: "cred_test",
    logger,
    hello: async () => hello,
    heartbeat: async () => ({ v: PROTOCOL_VERSION, type: "heartbeat", capacity: hello.capacity }),
    onFrame: () => {},
    onWelcome: () => onWelcome(),
  });
  s.start();
  await ready;
  return s;
}

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("Session on the wire", () => {
  it("sends a short message as one text frame", async () => {
    session = await welcomed();
    expect(meter.data()).toEqual([{ fin: true, opcode: 1, length: expect.any(Number) }]);
    expect(peer).toBeDefined();
  });

  it("fragments a long message into text frames of at most 32 KiB that the peer reassembles", async () => {
    session = await welcomed();
    const body = { lines: [{ service: "db", stream: "stdout", text: "€ and ü ".repeat(12_000) }] };
    const frame: AgentFrame = { v: PROTOCOL_VERSION, type: "rpc_result", id: "rpc_1", status: 200, body };
    expect(session.send(frame)).toBe(true);
    await until(() => messages.some((m) => m.frame.type === "rpc_result"));

    const received = messages.find((m) => m.frame.type === "rpc_result");
    expect(received?.isBinary).toBe(false);
    expect(received?.frame).toEqual(frame);

    const data = meter.data().slice(1); // after the hello
    const bytes = Buffer.byteLength(JSON.stringify(frame));
    expect(data.length).toBeGreaterThanOrEqual(Math.ceil(bytes / MAX_OUTGOING_FRAGMENT_BYTES));
    for (const f of data) expect(f.length).toBeLessThanOrEqual(MAX_OUTGOING_FRAGMENT_BYTES);
    expect(data[0]).toMatchObject({ opcode: 1, fin: false });
    for (const f of data.slice(1, -1)) expect(f).toMatchObject({ opcode: 0, fin: false });
    expect(data.at(-1)).toMatchObject({ opcode: 0, fin: true });
    expect(data.reduce((n, f) => n + f.length, 0)).toBe(bytes);
  });
});

// Issue 14 (10), the agent's side: a control plane that stops answering (a cut network, a frozen
// process) is noticed by the agent's own pings, and the agent dials again.
describe("Session liveness", () => {
  const hellos = () => messages.filter((m) => m.frame.type === "hello").length;

  it("drops a connection whose peer answers no ping three times in a row, and dials again", async () => {
    welcomeEveryMs = 50; // pings every 50 ms (at most AGENT_PING_MS)
    const logger = memoryLogger();
    session = await welcomed(logger);
    expect(hellos()).toBe(1);
    // The control plane stops reading: no pong, no frame, as when the network is cut.
    sockets[0]?.pause();
    await until(() => hellos() === 2, 5_000);
    expect(sockets).toHaveLength(2);
    expect(logger.entries().map((e) => e.msg)).toContain("control plane stopped answering pings; reconnecting");
  });

  it("keeps a connection whose peer answers its pings", async () => {
    welcomeEveryMs = 50;
    const logger = memoryLogger();
    session = await welcomed(logger);
    await new Promise((r) => setTimeout(r, 1_000)); // 20 ping intervals
    expect(hellos()).toBe(1);
    expect(sockets).toHaveLength(1);
    expect(logger.entries().map((e) => e.msg)).not.toContain("control plane stopped answering pings; reconnecting");
  });
});
