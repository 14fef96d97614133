import http, { type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import {
  pipeFromTunnel,
  pipeToTunnel,
  TUNNEL_HOP_HEADERS,
  type TunnelHeaders,
  TunnelMux,
  type TunnelOpen,
  type TunnelStream,
} from "@supamanager/shared";
import WebSocket from "ws";
import type { Logger } from "../log.js";
import { Backoff, type BackoffOptions } from "../session/backoff.js";

/**
 * The agent's end of the tunnel (ADR 0035, docs/agent.md "The tunnel"): a second WebSocket to
 * /agent/v1/tunnel, opened while the control plane's welcome says this host is in tunnel mode.
 * Each stream the control plane opens is one request to a project's gateway on this host (the
 * `gateway` endpoint of its applied stack, a port on the host's own interface); the answer and
 * upgraded connections (Realtime's WebSocket) flow back as raw bytes. Nothing is buffered whole.
 */
export interface TunnelClientOptions {
  url: string;
  credential: string;
  logger: Logger;
  /** The base URL of project `ref`'s gateway on this host, or null when the host does not run it. */
  gateway: (ref: string) => Promise<string | null>;
  backoff?: Partial<BackoffOptions>;
  /** How often the connection is pinged; two missed pongs drop it (default 5 s). */
  pingMs?: number;
  /** Per-stream credit (default: the protocol's). */
  window?: number;
  /**
   * Send frames with an all-zero masking key, which lets `ws` skip XOR-ing every byte in
   * JavaScript (the agent is the WebSocket client, so everything it sends is masked). Masking
   * protects intermediaries that read the plain stream; under TLS none can. Default: on for a
   * control plane reached over https/wss, off over plain http (ADR 0035).
   */
  zeroMask?: boolean;
}

/** `https://cp.example.com/base` → `wss://cp.example.com/base/agent/v1/tunnel`. */
export function tunnelUrl(controlPlane: string): string {
  const u = new URL(controlPlane);
  u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/agent/v1/tunnel`;
  u.search = "";
  u.hash = "";
  return u.toString();
}

export class TunnelClient {
  #ws: WebSocket | null = null;
  #mux: TunnelMux | null = null;
  #running = false;
  #retry: NodeJS.Timeout | null = null;
  readonly #backoff: Backoff;
  readonly #log: Logger;
  /** Connections opened so far (tests). */
  connections = 0;

  constructor(private readonly opts: TunnelClientOptions) {
    this.#log = opts.logger.child({ component: "tunnel" });
    this.#backoff = new Backoff({ baseMs: 500, factor: 2, capMs: 30_000, ...opts.backoff });
  }

  get running(): boolean {
    return this.#running;
  }

  get isOpen(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  /**
   * Open the data connection (and keep it open). Called again while running, e.g. by each welcome
   * of the control connection: that connection just got through, so a tunnel sitting out its
   * backoff after an outage redials now instead of up to `capMs` later.
   */
  start(): void {
    if (this.#running) {
      if (this.#retry) {
        clearTimeout(this.#retry);
        this.#retry = null;
        this.#backoff.reset();
        this.#log.info("the control connection is back; redialling the tunnel now");
        this.#dial();
      }
      return;
    }
    this.#running = true;
    this.#dial();
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#ws?.close(1000, "tunnel no longer wanted");
    this.#mux?.close("the agent closed its tunnel");
  }

  #dial(): void {
    if (!this.#running) return;
    const url = tunnelUrl(this.opts.url);
    const zeroMask = this.opts.zeroMask ?? url.startsWith("wss:");
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.opts.credential}` },
      ...(zeroMask ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      maxPayload: 1024 * 1024,
    });
    this.#ws = ws;
    const mux = new TunnelMux({
      send: (frame) => ws.send(frame),
      allocate: Buffer.allocUnsafe,
      ...(this.opts.window !== undefined ? { window: this.opts.window } : {}),
      maxStreams: 65_536,
      onOpen: (stream, open) => void this.#serve(stream, open),
      onProtocolError: (message) => {
        this.#log.warn("tunnel protocol error; reconnecting", { message });
        ws.terminate();
      },
    });
    this.#mux = mux;
    let alive = true;
    let ping: NodeJS.Timeout | null = null;
    let openedAt = 0;
    ws.on("open", () => {
      this.connections += 1;
      openedAt = Date.now();
      this.#log.info("tunnel connected");
      ping = setInterval(() => {
        if (!alive) {
          this.#log.warn("control plane stopped answering tunnel pings; reconnecting");
          ws.terminate();
          return;
        }
        alive = false;
        ws.ping();
      }, this.opts.pingMs ?? 5_000);
    });
    ws.on("pong", () => {
      alive = true;
    });
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      alive = true;
      if (!isBinary) return;
      mux.receive(
        Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data,
      );
    });
    ws.on("unexpected-response", (_req, res: IncomingMessage) => {
      this.#log.warn("control plane refused the tunnel connection", { status: res.statusCode });
      res.resume();
      ws.terminate();
    });
    ws.on("error", (err) => this.#log.warn("tunnel connection error", { err: err.message }));
    ws.on("close", (code: number) => {
      if (ping) clearInterval(ping);
      mux.close("the tunnel connection closed");
      if (this.#ws === ws) this.#ws = null;
      if (!this.#running) return;
      if (openedAt && Date.now() - openedAt > 10_000) this.#backoff.reset();
      const delay = this.#backoff.next();
      this.#log.info("tunnel disconnected; reconnecting", { code, inMs: delay });
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.#dial();
      }, delay);
    });
  }

  /** One stream: a request to the project's gateway, its answer streamed back. */
  async #serve(stream: TunnelStream, open: TunnelOpen): Promise<void> {
    // What arrives while the gateway is looked up (at most one window) waits here.
    const early: Uint8Array[] = [];
    let earlyEnd = false;
    stream.onData = (chunk) => early.push(chunk);
    stream.onEnd = () => {
      earlyEnd = true;
    };
    let base: string | null = null;
    try {
      base = await this.opts.gateway(open.ref);
    } catch (err) {
      this.#log.warn("cannot read the project's state", { ref: open.ref, err });
    }
    if (!base) {
      stream.reset("refused", `this host does not run project ${open.ref} (or it has no gateway)`);
      return;
    }
    const target = new URL(base);
    const headers: string[] = [];
    for (const [name, value] of open.headers) headers.push(name, value);
    const req = http.request({
      host: target.hostname.replace(/^\[|\]$/g, ""),
      port: target.port || 80,
      method: open.method,
      path: open.path,
      headers,
      setHost: false,
    });
    let answered = false;
    stream.onReset = () => req.destroy();
    req.on("error", (err) => {
      if (!answered) stream.reset("unreachable", `the project's gateway did not answer (${errorCode(err)})`);
      else stream.reset("unreachable", "the project's gateway closed the connection");
    });
    req.on("response", (res) => {
      answered = true;
      stream.sendHead({ status: res.statusCode ?? 502, headers: pairs(res.rawHeaders, false) });
      // The gateway dropped the connection mid-answer: say so now, not at the relay's idle timeout.
      res.on("error", () => stream.reset("unreachable", "the project's gateway closed the connection mid-answer"));
      pipeToTunnel(res, stream);
    });
    req.on("upgrade", (res, socket, head) => {
      answered = true;
      stream.sendHead({ status: res.statusCode ?? 101, headers: pairs(res.rawHeaders, true) });
      this.#relaySocket(stream, socket, head);
    });
    if (open.upgrade) {
      req.end();
      return;
    }
    pipeFromTunnel(stream, req);
    stream.onEnd = () => req.end();
    for (const chunk of early.splice(0)) stream.onData?.(chunk);
    if (earlyEnd) req.end();
  }

  #relaySocket(stream: TunnelStream, socket: Duplex, head: Buffer): void {
    stream.onReset = () => socket.destroy();
    socket.on("error", () => socket.destroy());
    socket.on("close", () => stream.reset("cancelled", "the project closed the connection"));
    pipeFromTunnel(stream, socket);
    stream.onEnd = () => socket.end();
    if (head.byteLength > 0) stream.send(head);
    pipeToTunnel(socket, stream);
  }
}

function pairs(raw: string[], keepHop: boolean): TunnelHeaders {
  const out: TunnelHeaders = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!keepHop && TUNNEL_HOP_HEADERS.has(name.toLowerCase())) continue;
    out.push([name, raw[i + 1] as string]);
  }
  return out;
}

function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}
