import { createHmac, timingSafeEqual } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import type { Duplex } from "node:stream";
import { upgradeWebSocket } from "@hono/node-server";
import {
  pipeFromTunnel,
  pipeToTunnel,
  TUNNEL_HOP_HEADERS,
  type TunnelHead,
  type TunnelHeaders,
  TunnelMux,
  type TunnelStream,
} from "@supamanager/shared";
import { and, eq, ne } from "drizzle-orm";
import type { Context } from "hono";
import type { WebSocket } from "ws";
import { hosts, hostTunnels, projects } from "../db/schema.js";
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
  /**
   * Several replicas share the database (PostgreSQL, ADR 0014): record in `host_tunnels` which
   * replica holds each host's data connection, and forward requests for hosts held elsewhere.
   */
  replicas?: boolean;
}

/**
 * The header a replica puts on a request it forwards to the replica holding the host's data
 * connection: `<unix seconds>.<HMAC-SHA256 of time, method, Host and path>` under a key derived
 * from the encryption key every replica shares. The holder trusts the X-Forwarded-* headers of
 * such a request (the forwarder set them) and never forwards it again.
 */
export const TUNNEL_HOP_HEADER = "x-supamanager-tunnel-hop";
/** How far a hop token's time may be from the receiver's clock (replay window, clock skew). */
const HOP_SKEW_SECONDS = 60;
/** How long a forwarding replica waits for the holder to accept the connection. */
const HOP_CONNECT_MS = 5_000;

interface HostTunnel {
  ws: WebSocket;
  mux: TunnelMux;
}

type Refusal = { ok: false; status: number; code: string; message: string };
type Route = { ok: true; tunnel: HostTunnel } | { ok: true; forward: string } | Refusal;
type Opened = { ok: true; stream: TunnelStream } | { ok: true; forward: string } | Refusal;

export class TunnelRelay {
  readonly #tunnels = new Map<string, HostTunnel>();
  readonly #routes = new Map<string, { hostId: string | null; tunnelMode: boolean; until: number }>();
  readonly #pingMs: number;
  readonly #routeCacheMs: number;
  readonly #hopKey: Buffer;
  /** How other replicas reach this one; known once the server listens. */
  #selfUrl: string | undefined;

  constructor(
    private readonly deps: AppDeps,
    private readonly opts: TunnelRelayOptions = {},
  ) {
    this.#pingMs = opts.pingMs ?? 5_000;
    this.#routeCacheMs = opts.routeCacheMs ?? 2_000;
    this.#hopKey = createHmac("sha256", deps.config.encryptionKey).update("supamanager tunnel replica hop v1").digest();
    this.#selfUrl = deps.config.tunnel.internalUrl?.replace(/\/+$/, "");
  }

  /** The server listens at `info`: unless configured, that is where other replicas forward to. */
  listening(info: AddressInfo): void {
    if (this.deps.config.tunnel.internalUrl) return;
    let address = info.address;
    if (address === "0.0.0.0" || address === "::") {
      const external = Object.values(networkInterfaces())
        .flat()
        .find((i) => i && i.family === "IPv4" && !i.internal);
      address = external?.address ?? "127.0.0.1";
    }
    this.#selfUrl = `http://${address.includes(":") ? `[${address}]` : address}:${info.port}`;
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
      allocate: Buffer.allocUnsafe,
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
    void this.#recordHolder(hostId);
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
      if (this.#tunnels.get(hostId) === tunnel) {
        this.#tunnels.delete(hostId);
        void this.#forgetHolder(hostId);
      }
      log.info("tunnel disconnected", { hostId, code });
    });
    ws.on("error", (err) => log.warn("tunnel socket error", { hostId, err: err.message }));
  }

  /** This replica holds `hostId`'s data connection now (a newer holder elsewhere overwrites it). */
  async #recordHolder(hostId: string): Promise<void> {
    const self = this.#selfUrl;
    if (!this.opts.replicas || !self) return;
    try {
      await this.deps.database.db
        .insert(hostTunnels)
        .values({ hostId, replicaUrl: self })
        .onConflictDoUpdate({ target: hostTunnels.hostId, set: { replicaUrl: self, connectedAt: new Date() } });
    } catch (err) {
      this.deps.logger.warn("cannot record this replica as the tunnel's holder", { hostId, err });
    }
  }

  /** The connection closed: forget it, unless another replica (or a newer connection here) took over. */
  async #forgetHolder(hostId: string): Promise<void> {
    const self = this.#selfUrl;
    if (!this.opts.replicas || !self) return;
    try {
      await this.deps.database.db
        .delete(hostTunnels)
        .where(and(eq(hostTunnels.hostId, hostId), eq(hostTunnels.replicaUrl, self)));
      // A new connection of the same host may have arrived here while the delete ran.
      if (this.#tunnels.has(hostId)) await this.#recordHolder(hostId);
    } catch (err) {
      this.deps.logger.warn("cannot clear this replica as the tunnel's holder", { hostId, err });
    }
  }

  /** The replica holding `hostId`'s data connection, when it is another one. */
  async #holder(hostId: string): Promise<string | null> {
    const [row] = await this.deps.database.db
      .select({ url: hostTunnels.replicaUrl })
      .from(hostTunnels)
      .where(eq(hostTunnels.hostId, hostId))
      .limit(1);
    return row && row.url !== this.#selfUrl ? row.url : null;
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

  async #route(ref: string, forwarded: boolean): Promise<Route> {
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
      // Another replica may hold the host's data connection: forward there, once (a forwarded
      // request that misses here too answers 503 rather than travelling on).
      if (this.opts.replicas && !forwarded) {
        const holder = await this.#holder(cached.hostId);
        if (holder) return { ok: true, forward: holder };
      }
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
  #forwardHeaders(req: IncomingMessage, upgrade: boolean, forwarded: boolean): TunnelHeaders {
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
      if (lower === "x-forwarded-host" || lower === TUNNEL_HOP_HEADER) continue;
      if (TUNNEL_HOP_HEADERS.has(lower) || (connectionTokens.has(lower) && lower !== "upgrade")) continue;
      out.push([name, value]);
    }
    if (upgrade) {
      out.push(["Connection", "Upgrade"]);
      out.push(["Upgrade", req.headers.upgrade ?? "websocket"]);
    }
    const trust = this.deps.config.trustProxy || forwarded;
    const client = req.socket.remoteAddress ?? "unknown";
    // A request forwarded by another replica already names the client (and the replica's own
    // address is not one the project cares about).
    const chain = forwarded && priorFor ? priorFor : trust && priorFor ? `${priorFor}, ${client}` : client;
    out.push(["X-Forwarded-For", chain]);
    const proto = trust && priorProto ? priorProto : "encrypted" in req.socket ? "https" : "http";
    out.push(["X-Forwarded-Proto", proto]);
    if (req.headers.host) out.push(["X-Forwarded-Host", req.headers.host]);
    return out;
  }

  /** Open a stream for `req`, or say why not (the caller answers). */
  async #open(req: IncomingMessage, ref: string, upgrade: boolean, forwarded: boolean): Promise<Opened> {
    const route = await this.#route(ref, forwarded);
    if (!route.ok || "forward" in route) return route;
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > this.deps.config.tunnel.maxRequestBytes) {
      return { ok: false, status: 413, code: "too_large", message: this.#tooLarge() };
    }
    try {
      const stream = route.tunnel.mux.open({
        ref,
        method: (req.method ?? "GET").toUpperCase(),
        path: req.url?.startsWith("/") ? (req.url as string) : "/",
        headers: this.#forwardHeaders(req, upgrade, forwarded),
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
    const forwarded = this.#verifyHop(req);
    try {
      opened = await this.#open(req, ref, false, forwarded);
    } catch (err) {
      this.deps.logger.error("tunnel route lookup failed", { ref, err });
      return fail(503, "unavailable", "The tunnel cannot look up this project right now");
    }
    if (!opened.ok) {
      fail(opened.status, opened.code, opened.message);
      req.resume();
      return;
    }
    if ("forward" in opened) return this.#forwardRequest(req, res, ref, opened.forward);
    const stream = opened.stream;
    const timers = this.#timers(stream, (code, message) => fail(code === "timeout" ? 504 : 502, code, message));
    let sent = 0;
    stream.onHead = (head: TunnelHead) => {
      timers.headed();
      if (head.status < 200) return; // interim answers (100 Continue) are not relayed
      res.writeHead(head.status, flatHeaders(head.headers, false));
    };
    pipeFromTunnel(stream, res, (chunk) => {
      timers.active();
      sent += chunk.byteLength;
      if (sent <= limits.maxResponseBytes) return true;
      stream.reset("too_large", "response over the tunnel's limit");
      res.destroy();
      return false;
    });
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
    // The request body, streamed with the stream's credit as back-pressure (the request is
    // paused while the agent's credit is used up). A reset stream answered through its handler,
    // a client that went away through the close handler.
    let received = 0;
    pipeToTunnel(req, stream, (chunk) => {
      received += chunk.byteLength;
      if (received <= limits.maxRequestBytes) {
        timers.active();
        return true;
      }
      stream.reset("too_large", "request over the tunnel's limit");
      timers.clear();
      fail(413, "too_large", this.#tooLarge());
      // The rest of the body is not read: drop the connection once the answer is out.
      if (res.writableFinished) req.destroy();
      else res.once("finish", () => req.destroy());
      return false;
    });
    req.on("end", () => timers.sent());
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
    const forwarded = this.#verifyHop(req);
    try {
      opened = await this.#open(req, ref, true, forwarded);
    } catch (err) {
      this.deps.logger.error("tunnel route lookup failed", { ref, err });
      return fail(503, "unavailable", "The tunnel cannot look up this project right now");
    }
    if (!opened.ok) {
      fail(opened.status, opened.code, opened.message);
      return;
    }
    if ("forward" in opened) return this.#forwardUpgrade(req, socket, head, ref, opened.forward, fail);
    const stream = opened.stream;
    const timers = this.#timers(stream, (code, message) => fail(code === "timeout" ? 504 : 502, code, message));
    timers.sent();
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
    pipeFromTunnel(stream, socket, () => {
      timers.active();
      return true;
    });
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
    if (head.byteLength > 0) stream.send(head);
    pipeToTunnel(socket, stream, () => {
      timers.active();
      return true;
    });
  }

  // ---- replica to replica (ADR 0035, "Several replicas") ----

  #hopToken(method: string, host: string, path: string, at: number): string {
    const mac = createHmac("sha256", this.#hopKey).update(`${at}\n${method}\n${host}\n${path}`).digest("base64url");
    return `${at}.${mac}`;
  }

  /** The request was forwarded by another replica (a valid, fresh hop token). */
  #verifyHop(req: IncomingMessage): boolean {
    const token = req.headers[TUNNEL_HOP_HEADER];
    if (typeof token !== "string") return false;
    const at = Number(token.slice(0, token.indexOf(".")));
    if (!Number.isInteger(at) || Math.abs(Date.now() / 1000 - at) > HOP_SKEW_SECONDS) return false;
    const expected = Buffer.from(
      this.#hopToken((req.method ?? "GET").toUpperCase(), req.headers.host ?? "", req.url ?? "/", at),
    );
    const given = Buffer.from(token);
    return given.byteLength === expected.byteLength && timingSafeEqual(given, expected);
  }

  /** The request for the holder: the relayed headers (X-Forwarded-* set here), Host kept, the hop token. */
  #hopRequest(req: IncomingMessage, holder: string, upgrade: boolean): http.ClientRequest {
    const target = new URL(holder);
    const method = (req.method ?? "GET").toUpperCase();
    const path = req.url?.startsWith("/") ? req.url : "/";
    const headers: string[] = [];
    for (const [name, value] of this.#forwardHeaders(req, upgrade, false)) headers.push(name, value);
    headers.push(
      TUNNEL_HOP_HEADER,
      this.#hopToken(method, req.headers.host ?? "", path, Math.floor(Date.now() / 1000)),
    );
    const up = http.request({
      host: target.hostname.replace(/^\[|\]$/g, ""),
      port: target.port || 80,
      method,
      path,
      headers,
      setHost: false,
    });
    up.on("socket", (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => up.destroy(new Error("connect timeout")), HOP_CONNECT_MS);
      socket.once("connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
    });
    return up;
  }

  #holderUnreachable(ref: string, holder: string, err: Error): string {
    this.deps.logger.warn("cannot reach the replica holding a tunnel", { ref, holder, err: err.message });
    return `The control-plane replica holding the tunnel of project ${ref}'s host cannot be reached; try again shortly`;
  }

  /** Relay a request through the replica holding the host's data connection. Never throws. */
  #forwardRequest(req: IncomingMessage, res: ServerResponse, ref: string, holder: string): void {
    const up = this.#hopRequest(req, holder, false);
    up.on("response", (answer) => {
      res.writeHead(answer.statusCode ?? 502, flatHeaders(pairsOf(answer.rawHeaders), false));
      answer.pipe(res);
      answer.on("error", () => res.destroy());
      answer.on("aborted", () => res.destroy());
    });
    up.on("error", (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(503, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify({ message: this.#holderUnreachable(ref, holder, err), code: "unavailable" }));
    });
    res.on("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  /** Relay an upgrade through the replica holding the host's data connection. Never throws. */
  #forwardUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    ref: string,
    holder: string,
    fail: (status: number, code: string, message: string) => void,
  ): void {
    const up = this.#hopRequest(req, holder, true);
    up.on("upgrade", (answer, upstream, upstreamHead) => {
      const lines = [`HTTP/1.1 ${answer.statusCode ?? 101} ${STATUS_CODES[answer.statusCode ?? 101] ?? ""}`];
      for (const [name, value] of pairsOf(answer.rawHeaders)) lines.push(`${name}: ${value}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (upstreamHead.byteLength > 0) socket.write(upstreamHead);
      if (head.byteLength > 0) upstream.write(head);
      upstream.on("error", () => socket.destroy());
      upstream.on("close", () => socket.destroy());
      socket.on("close", () => upstream.destroy());
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    up.on("response", (answer) => {
      // Refused (not 101): pass the holder's answer on and close.
      const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${STATUS_CODES[answer.statusCode ?? 502] ?? ""}`];
      for (const [name, value] of pairsOf(answer.rawHeaders)) {
        if (!TUNNEL_HOP_HEADERS.has(name.toLowerCase())) lines.push(`${name}: ${value}`);
      }
      lines.push("connection: close");
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      answer.pipe(socket);
    });
    up.on("error", (err) => fail(503, "unavailable", this.#holderUnreachable(ref, holder, err)));
    socket.on("close", () => up.destroy());
    up.end();
  }

  /**
   * The response timeout (from the end of the request body until the project's head arrives:
   * a large upload is not an unanswered request) and the idle timeout (no byte either way),
   * both resetting the stream and calling `onTimeout`. `sent()` starts the response timeout.
   */
  #timers(stream: TunnelStream, onTimeout: (code: "timeout", message: string) => void) {
    const limits = this.deps.config.tunnel;
    let headTimer: NodeJS.Timeout | null = null;
    let headed = false;
    let cleared = false;
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
      cleared = true;
      if (headTimer) clearTimeout(headTimer);
      headTimer = null;
      clearInterval(idle);
    };
    return {
      sent: () => {
        if (headed || cleared || headTimer) return;
        headTimer = setTimeout(() => {
          stream.reset("timeout", "no response in time");
          onTimeout("timeout", `The project did not answer within ${limits.responseTimeoutMs / 1000} s`);
        }, limits.responseTimeoutMs);
      },
      headed: () => {
        headed = true;
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

/** Node's flat raw header list as pairs. */
function pairsOf(raw: string[]): TunnelHeaders {
  const out: TunnelHeaders = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string]);
  return out;
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
