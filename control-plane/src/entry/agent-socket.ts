import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { createAdaptorServer, upgradeWebSocket, type WebSocketLike, type WebSocketServerLike } from "@hono/node-server";
import { MAX_FRAME_BYTES } from "@supamanager/shared";
import type { Context, Hono } from "hono";
import type { WSEvents } from "hono/ws";
import { type WebSocket, WebSocketServer } from "ws";
import type { AppDeps, AppEnv } from "../deps.js";
import type { SessionRegistry } from "../services/fleet/hub.js";
import { HostSession } from "../services/fleet/session.js";
import type { TunnelRelay } from "./tunnel.js";

/**
 * The socket layer allows frames up to twice MAX_FRAME_BYTES so that a frame somewhat over the
 * limit reaches the protocol decoder and is answered with a `too_large` error frame on a
 * connection that stays open; anything larger is cut off by `ws` itself (close code 1009)
 * before it is buffered, which costs that one connection and nothing else.
 */
export const AGENT_MAX_PAYLOAD = 2 * MAX_FRAME_BYTES;

/** A `ws` message as the session takes it: text as a string, binary as bytes (refused by the codec). */
function frameOf(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): string | Uint8Array {
  const buf = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? Buffer.from(data) : data;
  return isBinary ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : buf.toString("utf8");
}

/**
 * Node's `deps.agentUpgrade`: upgrades an authenticated /agent/v1/connect request through
 * @hono/node-server's built-in WebSocket support and drives a HostSession with the socket.
 */
export function nodeAgentUpgrade(registry: SessionRegistry): NonNullable<AppDeps["agentUpgrade"]> {
  return async (c: Context<AppEnv>, hostId: string) => {
    const deps = c.get("deps");
    let session: HostSession | undefined;
    const events: WSEvents<WebSocketLike> = {
      onOpen(_event, ws) {
        const raw = ws.raw as WebSocket | undefined;
        session = new HostSession(
          deps,
          hostId,
          {
            send: (text) => ws.send(text),
            close: (code, reason) => ws.close(code, reason),
            ...(raw ? { ping: () => raw.ping(), terminate: () => raw.terminate() } : {}),
          },
          registry,
        );
        if (raw) {
          // Pongs to the session's pings are the agent's sign of life between frames.
          raw.on("pong", () => session?.heard());
          // Frames straight from `ws` (ADR 0048): the adapter's onMessage copies each text frame
          // into a new Buffer and wraps it in a MessageEvent, per frame, for every agent. The
          // adapter builds that event only when onMessage is set (it reads it per frame), and
          // attaches its own listener synchronously after onOpen, so no frame is missed.
          raw.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
            void session?.receive(frameOf(data, isBinary));
          });
        } else {
          events.onMessage = (event) => {
            const data = event.data;
            void session?.receive(typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer));
          };
        }
        deps.logger.info("agent connected", { hostId });
      },
      onClose(event) {
        session?.closed();
        deps.logger.info("agent disconnected", { hostId, code: event.code });
      },
      onError(event) {
        deps.logger.warn("agent socket error", { hostId, err: (event as Event & { error?: unknown }).error });
      },
    };
    const middleware = upgradeWebSocket(() => events);
    const res = await middleware(c, async () => {});
    return res ?? c.json({ message: "WebSocket upgrade failed", code: "bad_request" }, 400);
  };
}

/**
 * The Node HTTP server for the app, with WebSocket upgrades enabled (a `ws` server in noServer
 * mode, handed to @hono/node-server). The entry and the tests build it the same way.
 */
export function createNodeServer(
  app: Hono<AppEnv>,
  opts: { tunnel?: TunnelRelay | undefined } = {},
): { server: Server; wss: WebSocketServer } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: AGENT_MAX_PAYLOAD });
  const server = createAdaptorServer({
    fetch: app.fetch,
    websocket: { server: wss as unknown as WebSocketServerLike },
  }) as Server;
  if (opts.tunnel) routeTunnelFirst(server, opts.tunnel);
  return { server, wss };
}

/**
 * Requests (and upgrades) whose Host names a project under the tunnel's domain go to the relay
 * before the app sees them (ADR 0035); everything else reaches the app's own listeners as before.
 */
function routeTunnelFirst(server: Server, relay: TunnelRelay): void {
  const onRequest = server.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  const onUpgrade = server.listeners("upgrade") as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
  server.removeAllListeners("request");
  server.removeAllListeners("upgrade");
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const ref = relay.refOf(req);
    if (ref) void relay.handleRequest(req, res, ref);
    else for (const listener of onRequest) listener.call(server, req, res);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ref = relay.refOf(req);
    if (ref) void relay.handleUpgrade(req, socket, head, ref);
    else for (const listener of onUpgrade) listener.call(server, req, socket, head);
  });
}
