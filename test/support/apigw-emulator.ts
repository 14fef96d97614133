import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import type { WebSocketResult } from "../../control-plane/src/entry/lambda-agent.js";
import { APIGW_MAX_FRAME_BYTES, APIGW_MAX_MESSAGE_BYTES } from "../../control-plane/src/services/fleet/apigw-hub.js";
import type { ConnectionsStandIn } from "../../control-plane/src/test-support/apigw.js";
import { FrameMeter } from "./ws-frames.js";

/**
 * A small local "API Gateway WebSocket API" for end-to-end tests of the Lambda entry (ADR 0017):
 * clients connect with `ws`; the emulator invokes the Lambda handler for $connect (refusing the
 * upgrade with the handler's status), $default (one invocation per message, text as is, binary
 * base64-encoded) and $disconnect (with the close code), and serves the @connections management
 * API through the stand-in server by delivering posts to, and closing, the real sockets.
 *
 * It enforces API Gateway's size limits as documented: a client frame over 32 KiB or a message
 * over 128 KiB closes the connection with 1009. What it does not emulate: the 10-minute idle
 * timeout and the 2-hour connection lifetime (both are ordinary closes to the agent).
 */
export class ApiGatewayEmulator {
  readonly server: Server;
  readonly sockets = new Map<string, WebSocket>();
  /** Every close, with the code the $disconnect event carried. */
  readonly closes: { connectionId: string; code: number; reason: string }[] = [];
  /** $connect refusals (status). */
  readonly refused: number[] = [];
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #pending = new Set<Promise<unknown>>();

  constructor(
    private readonly invoke: (event: unknown) => Promise<WebSocketResult>,
    standIn: ConnectionsStandIn,
    /** The mapped path (API mapping of a custom domain). */
    private readonly path = "/agent/v1/connect",
  ) {
    this.server = createServer((_req, res) => res.writeHead(404).end());
    this.server.on("upgrade", (req, socket, head) => void this.#upgrade(req, socket, head));
    standIn.onPost = (id, text) => {
      const ws = this.sockets.get(id);
      if (!ws) return false;
      ws.send(text);
      return true;
    };
    standIn.onDelete = (id) => this.sockets.get(id)?.close(1000, "deleted through @connections");
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Wait for every invocation started so far. */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  async close(): Promise<void> {
    for (const ws of this.sockets.values()) ws.terminate();
    await this.settle();
    this.#wss.close();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p)).catch(() => undefined);
    return p;
  }

  #context(connectionId: string, route: string, eventType: string, extra: Record<string, unknown> = {}) {
    return {
      routeKey: route,
      eventType,
      connectionId,
      requestId: randomBytes(8).toString("hex"),
      domainName: "127.0.0.1",
      stage: "prod",
      identity: { sourceIp: "127.0.0.1" },
      connectedAt: Date.now(),
      ...extra,
    };
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (new URL(req.url ?? "/", "http://x").pathname !== this.path) {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const connectionId = `${randomBytes(10).toString("base64url")}=`;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
    const result = await this.#track(
      this.invoke({
        requestContext: this.#context(connectionId, "$connect", "CONNECT"),
        headers,
        isBase64Encoded: false,
      }),
    );
    if (result.statusCode !== 200) {
      this.refused.push(result.statusCode);
      const body = result.body ?? "";
      socket.end(
        `HTTP/1.1 ${result.statusCode} Refused\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    const meter = new FrameMeter();
    meter.push(head);
    socket.on("data", (chunk: Buffer) => meter.push(chunk));
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.sockets.set(connectionId, ws);
      let seen = 0;
      ws.on("message", (data, isBinary) => {
        const frames = meter.data().slice(seen);
        seen = meter.data().length;
        const bytes = (data as Buffer).length;
        if (frames.some((f) => f.length > APIGW_MAX_FRAME_BYTES) || bytes > APIGW_MAX_MESSAGE_BYTES) {
          ws.close(1009, "Message too big");
          return;
        }
        const body = isBinary ? (data as Buffer).toString("base64") : (data as Buffer).toString("utf8");
        void this.#track(
          this.invoke({
            requestContext: this.#context(connectionId, "$default", "MESSAGE"),
            body,
            isBase64Encoded: isBinary,
          }),
        );
      });
      ws.on("close", (code, reason) => {
        this.sockets.delete(connectionId);
        const text = reason.toString();
        this.closes.push({ connectionId, code, reason: text });
        void this.#track(
          this.invoke({
            requestContext: this.#context(connectionId, "$disconnect", "DISCONNECT", {
              disconnectStatusCode: code,
              disconnectReason: text,
            }),
            isBase64Encoded: false,
          }),
        );
      });
    });
  }
}
