import { decodeServerFrame, PROTOCOL_VERSION, type Rpc, type ServerFrame } from "@supamanager/shared";
import WebSocket from "ws";

export const GiB = 1024 * 1024 * 1024;

/**
 * An agent at the protocol level: a `ws` client that speaks frames, for tests that drive the
 * control plane's side of the channel frame by frame (the real agent is test/support/agent-process.ts).
 */
export class ProtocolAgent {
  readonly frames: ServerFrame[] = [];
  closed: { code: number; reason: string } | undefined;
  #waiters: (() => void)[] = [];
  /**
   * When set, every `rpc` frame is answered with an `rpc_result` carrying what this returns
   * (status, body, …); null leaves the rpc unanswered.
   */
  answerRpc: ((rpc: Rpc) => Record<string, unknown> | null) | undefined;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const d = decodeServerFrame(data.toString());
      if (d.ok) {
        this.frames.push(d.frame);
        const frame = d.frame;
        const answer = frame.type === "rpc" ? this.answerRpc?.(frame) : null;
        if (frame.type === "rpc" && answer) this.send({ type: "rpc_result", id: frame.id, ...answer });
      }
      this.#wake();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.#wake();
    });
  }

  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Connect to `${baseUrl}/agent/v1/connect` with the host credential. */
  static async connect(baseUrl: string, credential: string): Promise<ProtocolAgent> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/agent/v1/connect`, {
      headers: { authorization: `Bearer ${credential}` },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return new ProtocolAgent(ws);
  }

  send(frame: Record<string, unknown>) {
    this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...frame }));
  }

  hello(inventory: unknown[] = [], bootId = "boot-1") {
    this.send({
      type: "hello",
      agentVersion: "0.1.0",
      hostname: "edge-test",
      compose: "v1",
      bootId,
      capacity: { cpus: 4, memTotalBytes: 16 * GiB, memFreeBytes: 8 * GiB, memReservedBytes: 0, load1: 0.1 },
      inventory,
    });
  }

  /** Wait for the n-th frame of `type` (counting from the start of the connection). */
  async waitFor<K extends ServerFrame["type"]>(
    type: K,
    n = 1,
    ms = 10_000,
  ): Promise<Extract<ServerFrame, { type: K }>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.filter((f) => f.type === type);
      if (found.length >= n) return found[n - 1] as Extract<ServerFrame, { type: K }>;
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) while waiting for ${type}`);
      if (Date.now() > deadline) throw new Error(`no ${type}; got ${JSON.stringify(this.frames.map((f) => f.type))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async waitClosed(ms = 10_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("socket did not close");
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.closed;
  }

  close() {
    this.ws.close();
  }
}
