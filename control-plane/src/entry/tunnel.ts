import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { upgradeWebSocket } from "@hono/node-server";
import {
  TUNNEL_HOP_HEADERS,
  type TunnelHead,
  type TunnelHeaders,
  TunnelMux,
  type TunnelStream,
} from "@supamanager/shared";
import { and, eq, ne } from "drizzle-orm";
import type { Context } from "hono";
import type { WebSocket } from "ws";
import { hosts, projects } from "../db/schema.js";
import type { AppDeps, AppEnv } from "../deps.js";
import { CLOSE } from "../services/fleet/hub.js";
import { refFromHostHeader } from "../services/projects/urls.js";

/**
 * The tunnel on Node (ADR 0035): requests for `<ref>.<tunnel domain>` are relayed to the agent of
 * the project's host over that host's data connection (/agent/v1/tunnel), one stream per request
 * or upgraded connection, bodies streamed both ways under per-stream credit (shared/protocol/
 * tunnel-mux.ts). The tunnel authenticates nothing: the project's gateway checks keys as ever.
 */

export interface TunnelRelayOptions {
  /** How often the data connection is pinged; two missed pongs drop it (default 5 s). */
  pingMs?: number;
  /** How long a ref → host lookup is reused (default 2 s). */
  routeCacheMs?: number;
  /** Per-stream credit (default: the protocol's). */
  window?: number;
  /** Where project `ref` lives (default: the database); benchmarks replace it. */
  lookup?: (ref: string) => Promise<{ hostId: string | null; tunnelMode: boolean }>;
}

interface HostTunnel {
  ws: WebSocket;
  mux: TunnelMux;
}

type Refusal = { ok: false; status: number; code: string; message: string };
type Route = { ok: true; tunnel: HostTunnel } | Refusal;
type Opened = { ok: true; stream: TunnelStream } | Refusal;

export class TunnelRelay {
  readonly #tunnels = new Map<string, HostTunnel>();
  readonly #routes = new Map<string, { hostId: string | null; tunnelMode: boolean; until: number }>();
  readonly #pingMs: number;
  readonly #routeCacheMs: number;

  constructor(
    private readonly deps: AppDeps,
    private readonly opts: TunnelRelayOptions = {},
  ) {
    this.#pingMs = opts.pingMs ?? 5_000;
    this.#routeCacheMs = opts.routeCacheMs ?? 2_000;
  }

  /** Hosts whose data connection this process holds. */
  get connectedHosts(): string[] {
    return [...this.#tunnels.keys()];
  }

  /** `deps.tunnelUpgrade`: the authenticated /agent/v1/tunnel request becomes the host's data connection. */
  readonly upgrade = async (c: Context<AppEnv>, hostId: string): Promise<Response> => {
    const middleware = upgradeWebSocket(() => ({
      onOpen: (_event, ws) => {
        const raw = ws.raw as WebSocket | undefined;
        if (raw) this.attach(hostId, raw);
        else ws.close(1011, "no socket");
      },
    }));
    const res = await middleware(c, async () => {});
    return res ?? c.json({ message: "WebSocket upgrade failed", code: "bad_request" }, 400);
  };

  /** The project ref a request is for, when its Host is under the tunnel's domain; else null. */
  refOf(req: IncomingMessage): string | null {
    return refFromHostHeader(this.deps.config, req.headers.host);
  }

  closeAll(): void {
    for (const t of this.#tunnels.values()) t.ws.close(CLOSE.shuttingDown, "control plane shutting down");
  }

  /** Take `ws` as the data connection of `hostId` (replacing an older one). */
  attach(hostId: string, ws: WebSocket): void {
    const log = this.deps.logger;
    const old = this.#tunnels.get(hostId);
    if (old) old.ws.close(CLOSE.replaced, "replaced by a newer tunnel connection");
    const mux = new TunnelMux({
      send: (frame) => ws.send(frame),
      maxStreams: this.deps.config.tunnel.maxStreams,
      ...(this.opts.window !== undefined ? { window: this.opts.window } : {}),
      onProtocolError: (message) => {
        log.warn("tunnel protocol error; closing the data connection", { hostId, message });
        ws.close(1002, "protocol error");
      },
    });
    const tunnel: HostTunnel = { ws, mux };
    this.#tunnels.set(hostId, tunnel);
    log.info("tunnel connected", { hostId });
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) {
        log.warn("tunnel stopped answering pings; dropping it", { hostId });
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, this.#pingMs);
    ping.unref();
    ws.on("pong", () => {
      alive = true;
    });
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      alive = true;
      if (!isBinary) {
        ws.close(1003, "the tunnel carries binary frames only");
        return;
      }
      mux.receive(toBytes(data));
    });
    ws.on("close", (code: number) => {
      clearInterval(ping);
      mux.close("The project's host dropped its tunnel connection");
      if (this.#tunnels.get(hostId) === tunnel) this.#tunnels.delete(hostId);
      log.info("tunnel disconnected", { hostId, code });
    });
    ws.on("error", (err) => log.warn("tunnel socket error", { hostId, err: err.message }));
  }

  async #lookup(ref: string): Promise<{ hostId: string | null; tunnelMode: boolean }> {
    const [row] = await this.deps.database.db
      .select({ hostId: projects.hostId, reachability: hosts.reachability })
      .from(projects)
      .leftJoin(hosts, eq(hosts.id, projects.hostId))
      .where(and(eq(projects.ref, ref), ne(projects.status, "REMOVED")))
      .limit(1);
    return { hostId: row?.hostId ?? null, tunnelMode: row?.reachability === "tunnel" };
  }

  async #route(ref: string): Promise<Route> {
    const now = Date.now();
    let cached = this.#routes.get(ref);
    if (!cached || cached.until < now) {
      const found = this.opts.lookup ? await this.opts.lookup(ref) : await this.#lookup(ref);
      cached = { ...found, until: now + this.#routeCacheMs };
      this.#routes.set(ref, cached);
      if (this.#routes.size > 10_000) this.#routes.clear();
    }
    if (cached.hostId === null) {
      return { ok: false, status: 404, code: "not_found", message: `No project ${ref} is served here` };
    }
    if (!cached.tunnelMode) {
      return {
        ok: false,
        status: 404,
        code: "not_found",
        message: `Project ${ref} is not served through the tunnel: its host is reached directly`,
      };
    }
    const tunnel = this.#tunnels.get(cached.hostId);
    if (!tunnel || tunnel.mux.closed) {
      // With several replicas the host's data connection may be held by another one; forwarding
      // between replicas is not built yet (ADR 0035), so this replica can only say so.
      return {
        ok: false,
        status: 503,
        code: "unavailable",
        message: `The host of project ${ref} has no tunnel connection to this control plane right now; try again shortly`,
      };
    }
    return { ok: true, tunnel };
  }

  /** The headers relayed for `req`: hop-by-hop ones dropped, X-Forwarded-* set. */
  #forwardHeaders(req: IncomingMessage, upgrade: boolean): TunnelHeaders {
    const out: TunnelHeaders = [];
    const raw = req.rawHeaders;
    let priorFor: string | undefined;
    let priorProto: string | undefined;
    const connectionTokens = new Set(
      (req.headers.connection ?? "")
        .split(",")
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
    );
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string;
      const value = raw[i + 1] as string;
      const lower = name.toLowerCase();
      if (lower === "x-forwarded-for") {
        priorFor = priorFor ? `${priorFor}, ${value}` : value;
        continue;
      }
      if (lower === "x-forwarded-proto") {
        priorProto ??= value;
        continue;
      }
      if (lower === "x-forwarded-host") continue;
      if (TUNNEL_HOP_HEADERS.has(lower) || (connectionTokens.has(lower) && lower !== "upgrade")) continue;
      out.push([name, value]);
    }
    if (upgrade) {
      out.push(["Connection", "Upgrade"]);
      out.push(["Upgrade", req.headers.upgrade ?? "websocket"]);
    }
    const trust = this.deps.config.trustProxy;
    const client = req.socket.remoteAddress ?? "unknown";
    out.push(["X-Forwarded-For", trust && priorFor ? `${priorFor}, ${client}` : client]);
    const proto = trust && priorProto ? priorProto : "encrypted" in req.socket ? "https" : "http";
    out.push(["X-Forwarded-Proto", proto]);
    if (req.headers.host) out.push(["X-Forwarded-Host", req.headers.host]);
    return out;
  }

  /** Open a stream for `req`, or say why not (the caller answers). */
  async #open(req: IncomingMessage, ref: string, upgrade: boolean): Promise<Opened> {
    const route = await this.#route(ref);
    if (!route.ok) return route;
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > this.deps.config.tunnel.maxRequestBytes) {
      return { ok: false, status: 413, code: "too_large", message: this.#tooLarge() };
    }
    try {
      const stream = route.tunnel.mux.open({
        ref,
        method: (req.method ?? "GET").toUpperCase(),
        path: req.url?.startsWith("/") ? (req.url as string) : "/",
        headers: this.#forwardHeaders(req, upgrade),
        upgrade,
      });
      return { ok: true, stream };
    } catch {
      return {
        ok: false,
        status: 503,
        code: "unavailable",
        message: `The tunnel of project ${ref}'s host is carrying as many requests as it may; try again shortly`,
      };
    }
  }

  #tooLarge(): string {
    return `The request body is larger than the tunnel's limit of ${this.deps.config.tunnel.maxRequestBytes} bytes`;
  }

  /** Relay one HTTP request (Host under the tunnel domain). Never throws. */
  async handleRequest(req: IncomingMessage, res: ServerResponse, ref: string): Promise<void> {
    const limits = this.deps.config.tunnel;
    const fail = (status: number, code: string, message: string) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(status, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify({ message, code }));
    };
    let opened: Opened;
    try {
      opened = await this.#open(req, ref, false);
    } catch (err) {
      this.deps.logger.error("tunnel route lookup failed", { ref, err });
      return fail(503, "unavailable", "The tunnel cannot look up this project right now");
    }
    if (!opened.ok) {
      fail(opened.status, opened.code, opened.message);
      req.resume();
      return;
    }
    const stream = opened.stream;
    const timers = this.#timers(stream, (code, message) => fail(code === "timeout" ? 504 : 502, code, message));
    let sent = 0;
    stream.onHead = (head: TunnelHead) => {
      timers.headed();
      if (head.status < 200) return; // interim answers (100 Continue) are not relayed
      res.writeHead(head.status, flatHeaders(head.headers, false));
    };
    stream.onData = (chunk) => {
      timers.active();
      sent += chunk.byteLength;
      if (sent > limits.maxResponseBytes) {
        stream.reset("too_large", "response over the tunnel's limit");
        res.destroy();
        return;
      }
      if (res.write(chunk)) stream.consumed(chunk.byteLength);
      else res.once("drain", () => stream.consumed(chunk.byteLength));
    };
    stream.onEnd = () => {
      timers.clear();
      res.end();
    };
    stream.onReset = (r) => {
      timers.clear();
      fail(
        r.code === "timeout" ? 504 : 502,
        "bad_gateway",
        `The project could not be reached through the tunnel: ${r.message}`,
      );
    };
    res.on("close", () => {
      timers.clear();
      if (!res.writableFinished) stream.reset("cancelled", "the client went away");
    });
    // The request body, streamed with the stream's credit as back-pressure.
    let received = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        received += chunk.byteLength;
        if (received > limits.maxRequestBytes) {
          stream.reset("too_large", "request over the tunnel's limit");
          timers.clear();
          fail(413, "too_large", this.#tooLarge());
          return;
        }
        timers.active();
        await stream.write(chunk);
      }
      stream.end();
    } catch {
      // The stream was reset (its handler answered) or the client went away (close handler).
    }
  }

  /** Relay one upgrade request (a WebSocket) as raw bytes after the project's answer. Never throws. */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ref: string): Promise<void> {
    socket.on("error", () => socket.destroy());
    let headWritten = false;
    const fail = (status: number, code: string, message: string) => {
      if (headWritten || socket.destroyed) {
        socket.destroy();
        return;
      }
      headWritten = true;
      const body = JSON.stringify({ message, code });
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    let opened: Opened;
    try {
      opened = await this.#open(req, ref, true);
    } catch (err) {
      this.deps.logger.error("tunnel route lookup failed", { ref, err });
      return fail(503, "unavailable", "The tunnel cannot look up this project right now");
    }
    if (!opened.ok) {
      fail(opened.status, opened.code, opened.message);
      return;
    }
    const stream = opened.stream;
    const timers = this.#timers(stream, (code, message) => fail(code === "timeout" ? 504 : 502, code, message));
    stream.onHead = (h) => {
      timers.headed();
      if (h.status < 200 && h.status !== 101) return;
      headWritten = true;
      const lines = [`HTTP/1.1 ${h.status} ${STATUS_CODES[h.status] ?? ""}`];
      for (const [name, value] of h.headers) {
        const lower = name.toLowerCase();
        if (h.status !== 101 && TUNNEL_HOP_HEADERS.has(lower)) continue;
        lines.push(`${name}: ${value}`);
      }
      if (h.status !== 101) lines.push("connection: close");
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    };
    stream.onData = (chunk) => {
      timers.active();
      if (socket.write(chunk)) stream.consumed(chunk.byteLength);
      else socket.once("drain", () => stream.consumed(chunk.byteLength));
    };
    stream.onEnd = () => {
      timers.clear();
      socket.end();
    };
    stream.onReset = (r) => {
      timers.clear();
      fail(502, "bad_gateway", `The project could not be reached through the tunnel: ${r.message}`);
    };
    socket.on("close", () => {
      timers.clear();
      stream.reset("cancelled", "the client went away");
    });
    try {
      if (head.byteLength > 0) await stream.write(head);
      for await (const chunk of socket as AsyncIterable<Buffer>) {
        timers.active();
        await stream.write(chunk);
      }
      stream.end();
    } catch {
      // reset or gone: handled above
    }
  }

  /**
   * The response timeout (until the project's head arrives) and the idle timeout (no byte
   * either way), both resetting the stream and calling `onTimeout`.
   */
  #timers(stream: TunnelStream, onTimeout: (code: "timeout", message: string) => void) {
    const limits = this.deps.config.tunnel;
    let headTimer: NodeJS.Timeout | null = setTimeout(() => {
      stream.reset("timeout", "no response in time");
      onTimeout("timeout", `The project did not answer within ${limits.responseTimeoutMs / 1000} s`);
    }, limits.responseTimeoutMs);
    let lastActive = Date.now();
    const idle = setInterval(
      () => {
        if (Date.now() - lastActive < limits.idleTimeoutMs) return;
        stream.reset("timeout", "idle");
        onTimeout("timeout", `Nothing moved through the tunnel for ${limits.idleTimeoutMs / 1000} s`);
        clear();
      },
      Math.min(limits.idleTimeoutMs, 5_000),
    );
    const clear = () => {
      if (headTimer) clearTimeout(headTimer);
      headTimer = null;
      clearInterval(idle);
    };
    return {
      headed: () => {
        if (headTimer) clearTimeout(headTimer);
        headTimer = null;
        lastActive = Date.now();
      },
      active: () => {
        lastActive = Date.now();
      },
      clear,
    };
  }
}

/** Pairs as Node's flat raw header list, hop-by-hop headers dropped (Node frames the body itself). */
function flatHeaders(headers: TunnelHeaders, keepHop: boolean): string[] {
  const out: string[] = [];
  for (const [name, value] of headers) {
    if (!keepHop && TUNNEL_HOP_HEADERS.has(name.toLowerCase())) continue;
    out.push(name, value);
  }
  return out;
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
