import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type AgentFrame, decodeAgentFrame, MAX_FRAME_BYTES } from "@supamanager/shared";
import { WebSocket, WebSocketServer } from "ws";

export interface Received {
  conn: number;
  frame: AgentFrame;
}

/**
 * A tiny stand-in for the control plane: the join endpoint over node:http and the agent
 * WebSocket over `ws`, recording everything the agent sends (validated with the shared codec).
 */
export class FakeControlPlane {
  readonly server: Server;
  readonly wss: WebSocketServer;
  readonly sockets: WebSocket[] = [];
  readonly received: Received[] = [];
  readonly invalid: string[] = [];
  readonly upgrades: Array<{ authorization: string | undefined; at: number }> = [];
  readonly joins: unknown[] = [];
  readonly closes: Array<{ code: number; reason: string }> = [];
  /** Upgrades to refuse with 401 before accepting again. */
  rejectNext = 0;
  credential = "cred_0123456789abcdef0123456789abcdef";
  /** What POST /agent/v1/join answers. */
  joinAnswer: { status: number; body: unknown } = {
    status: 201,
    body: { host_id: "host_test", credential: "cred_0123456789abcdef0123456789abcdef", region: "eu-1" },
  };
  private waiters: Array<() => void> = [];

  constructor() {
    this.server = createServer((req, res) => {
      if (req.method === "POST" && req.url === "/agent/v1/join") {
        let body = "";
        req.on("data", (c: Buffer) => {
          body += c.toString();
        });
        req.on("end", () => {
          this.joins.push(JSON.parse(body));
          res.writeHead(this.joinAnswer.status, { "content-type": "application/json" });
          res.end(JSON.stringify(this.joinAnswer.body));
        });
        return;
      }
      res.writeHead(404).end();
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
    this.server.on("upgrade", (req: IncomingMessage, socket, head) => {
      this.upgrades.push({ authorization: req.headers.authorization, at: Date.now() });
      if (
        req.url !== "/agent/v1/connect" ||
        this.rejectNext > 0 ||
        req.headers.authorization !== `Bearer ${this.credential}`
      ) {
        if (this.rejectNext > 0) this.rejectNext -= 1;
        const body = JSON.stringify({ message: "host credential is not valid", code: "unauthorized" });
        socket.end(
          `HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
        );
        this.notify();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const conn = this.sockets.push(ws);
        ws.on("message", (data) => {
          const text = data.toString();
          const d = decodeAgentFrame(text);
          if (d.ok) this.received.push({ conn, frame: d.frame });
          else this.invalid.push(text);
          this.notify();
        });
        ws.on("close", (code, reason) => {
          this.closes.push({ code, reason: reason.toString() });
          this.notify();
        });
        this.notify();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  get current(): WebSocket {
    const ws = this.sockets.at(-1);
    if (!ws) throw new Error("no agent connected");
    return ws;
  }

  send(frame: unknown): void {
    this.current.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  frames<T extends AgentFrame["type"]>(type: T, conn?: number): Array<Extract<AgentFrame, { type: T }>> {
    return this.received
      .filter((r) => r.frame.type === type && (conn === undefined || r.conn === conn))
      .map((r) => r.frame as Extract<AgentFrame, { type: T }>);
  }

  /** Wait until `check` is true (re-checked whenever anything arrives), or fail after `ms`. */
  async until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

export { WebSocket };
