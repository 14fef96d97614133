import type { IncomingMessage } from "node:http";
import {
  type AgentFrame,
  decodeServerFrame,
  encodeFrame,
  type Heartbeat,
  type Hello,
  MAX_FRAME_BYTES,
  type ServerFrame,
  type Welcome,
} from "@supamanager/shared";
import WebSocket from "ws";
import type { Logger } from "../log.js";
import { Backoff, type BackoffOptions } from "./backoff.js";

/**
 * Largest WebSocket frame the agent sends. A longer message goes out fragmented (RFC 6455 §5.4)
 * into frames of at most this many bytes: API Gateway WebSocket APIs (the control plane on AWS
 * Lambda, ADR 0017) close a connection on any client frame over 32 KiB, and every other peer
 * (`ws` on Node) reassembles fragments into the same message.
 */
export const MAX_OUTGOING_FRAGMENT_BYTES = 32 * 1024;

/** `text` as UTF-8 pieces of at most `max` bytes, never splitting a character. */
export function utf8Fragments(text: string, max: number): Buffer[] {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= max) return [bytes];
  const out: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + max, bytes.length);
    // A continuation byte (10xxxxxx) belongs to the character before it: cut before that character.
    while (end < bytes.length && ((bytes[end] as number) & 0xc0) === 0x80) end -= 1;
    out.push(bytes.subarray(start, end));
    start = end;
  }
  return out;
}

/** `https://cp.example.com/base` → `wss://cp.example.com/base/agent/v1/connect`. */
export function connectUrl(controlPlane: string): string {
  const u = new URL(controlPlane);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  else if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new Error(`unsupported URL scheme ${u.protocol}`);
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/agent/v1/connect`;
  u.search = "";
  u.hash = "";
  return u.toString();
}

export interface SessionOptions {
  url: string;
  credential: string;
  logger: Logger;
  hello: () => Promise<Hello>;
  heartbeat: () => Promise<Heartbeat>;
  /** apply / job / rpc frames; welcome and error frames are handled here. */
  onFrame: (frame: Exclude<ServerFrame, { type: "welcome" | "error" }>) => void;
  /** After each welcome: the control plane now knows the inventory. */
  onWelcome?: (hostId: string, welcome: Welcome) => void;
  backoff?: Partial<BackoffOptions>;
  /** Slower backoff after the control plane refused the credential (401/403 at upgrade). */
  authBackoff?: Partial<BackoffOptions>;
  /** A connection that lasted this long resets the backoff. */
  stableAfterMs?: number;
  handshakeTimeoutMs?: number;
  /** Without a welcome this long after open, the connection is dropped and dialled again. */
  welcomeTimeoutMs?: number;
}

type Phase = "idle" | "connecting" | "open" | "waiting" | "stopped";

/** How often the agent pings the control plane (at most; never less often than it heartbeats). */
export const AGENT_PING_MS = 5_000;

/**
 * The agent's one connection to the control plane: dials out, says hello, keeps heartbeats and
 * pings going, and dials again after any failure until stop(). It never throws at its caller.
 */
export class Session {
  private ws: WebSocket | null = null;
  private phase: Phase = "idle";
  private readonly backoff: Backoff;
  private readonly authBackoff: Backoff;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private welcomeTimer: NodeJS.Timeout | null = null;
  private openedAt = 0;
  private welcomed = false;
  private missedPongs = 0;
  private readonly log: Logger;
  /** Connections opened so far (tests and logs). */
  connections = 0;

  constructor(private readonly opts: SessionOptions) {
    this.log = opts.logger.child({ component: "session" });
    this.backoff = new Backoff({ baseMs: 500, factor: 2, capMs: 30_000, ...opts.backoff });
    this.authBackoff = new Backoff({ baseMs: 15_000, factor: 2, capMs: 300_000, ...opts.authBackoff });
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && this.phase === "open";
  }

  start(): void {
    if (this.phase !== "idle") return;
    this.dial();
  }

  /**
   * Send a frame if connected and welcomed; returns false when it could not be sent (what it carried
   * is re-sent after the next welcome: inventory in hello, health in full).
   */
  send(frame: AgentFrame): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    // Nothing but hello (and error answers) before the control plane has welcomed us: it would be out of order.
    if (!this.welcomed && frame.type !== "hello" && frame.type !== "error") return false;
    let text: string;
    try {
      text = encodeFrame(frame);
    } catch (err) {
      this.log.error("refusing to send an invalid frame", { type: frame.type, err });
      return false;
    }
    const pieces = utf8Fragments(text, MAX_OUTGOING_FRAGMENT_BYTES);
    if (pieces.length === 1) {
      ws.send(text);
      return true;
    }
    // Sent back to back, so no other message can come between the fragments (pings may; RFC 6455 allows it).
    for (const [i, piece] of pieces.entries()) ws.send(piece, { binary: false, fin: i === pieces.length - 1 });
    return true;
  }

  /**
   * Close the connection (1000) and dial again, so the next hello reports what changed (a failed
   * self-update). Nothing happens while not connected: the next dial says it anyway.
   */
  reconnect(reason: string): void {
    const ws = this.ws;
    if (this.phase !== "open" || !ws) return;
    this.log.info("reconnecting to report a change", { reason });
    ws.close(1000, reason.slice(0, 100));
  }

  /** Close with 1000 and stop dialling. Resolves once the socket is closed (or after `timeoutMs`). */
  async stop(timeoutMs = 3_000): Promise<void> {
    if (this.phase === "stopped") return;
    this.phase = "stopped";
    this.clearTimers();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        ws.terminate();
        resolve();
      }, timeoutMs);
      ws.once("close", () => {
        clearTimeout(t);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, "agent stopping");
    });
  }

  private dial(): void {
    if (this.phase === "stopped") return;
    this.phase = "connecting";
    this.welcomed = false;
    this.missedPongs = 0;
    const url = connectUrl(this.opts.url);
    let authRejected = false;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.opts.credential}` },
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: this.opts.handshakeTimeoutMs ?? 10_000,
      perMessageDeflate: false,
    });
    this.ws = ws;

    ws.on("unexpected-response", (_req, res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      authRejected = status === 401 || status === 403;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        if (body.length < 2000) body += c;
      });
      res.on("end", () => {
        const message = serverMessage(body);
        if (authRejected) {
          this.log.error("control plane rejected this host's credential; was the host removed? retrying slowly", {
            status,
            message,
          });
        } else {
          this.log.warn("control plane refused the connection", { status, message });
        }
        ws.terminate();
      });
      res.on("error", () => ws.terminate());
    });

    ws.on("open", () => {
      this.phase = "open";
      this.openedAt = Date.now();
      this.connections += 1;
      this.log.info("connected", { url, connection: this.connections });
      this.welcomeTimer = setTimeout(() => {
        this.log.warn("no welcome from the control plane; reconnecting");
        ws.terminate();
      }, this.opts.welcomeTimeoutMs ?? 15_000);
      this.opts.hello().then(
        (hello) => this.send(hello),
        (err) => {
          this.log.error("cannot build hello; reconnecting", { err });
          ws.terminate();
        },
      );
    });

    ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      this.missedPongs = 0; // any frame shows the control plane is there
      this.receive(data, isBinary);
    });
    ws.on("pong", () => {
      this.missedPongs = 0;
    });

    ws.on("error", (err) => {
      // Always followed by `close`; the reconnect happens there.
      if (!authRejected) this.log.warn("connection error", { err: err.message });
    });

    ws.on("close", (code: number, reason: Buffer) => {
      if (this.ws === ws) this.ws = null;
      this.clearTimers();
      const lasted = this.openedAt ? Date.now() - this.openedAt : 0;
      const wasOpen = this.phase === "open";
      this.openedAt = 0;
      if (this.phase === "stopped") return;
      if (wasOpen) this.log.warn("disconnected", { code, reason: reason.toString().slice(0, 200), lastedMs: lasted });
      if (wasOpen && this.welcomed && lasted >= (this.opts.stableAfterMs ?? 10_000)) this.backoff.reset();
      if (!authRejected && this.welcomed) this.authBackoff.reset();
      const delay = authRejected ? this.authBackoff.next() : this.backoff.next();
      this.phase = "waiting";
      this.log.info("reconnecting", { inMs: delay, authRejected });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.dial();
      }, delay);
    });
  }

  private receive(data: WebSocket.RawData, isBinary: boolean): void {
    const raw = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const decoded = decodeServerFrame(isBinary ? new Uint8Array(raw) : raw.toString("utf8"));
    if (!decoded.ok) {
      this.log.warn("invalid frame from the control plane", {
        code: decoded.error.code,
        message: decoded.error.message,
      });
      this.send(decoded.error);
      return;
    }
    const frame = decoded.frame;
    switch (frame.type) {
      case "welcome":
        this.welcomed = true;
        if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
        this.welcomeTimer = null;
        this.log.info("welcomed", { hostId: frame.hostId, heartbeatIntervalMs: frame.heartbeatIntervalMs });
        this.startHeartbeat(frame.heartbeatIntervalMs);
        this.opts.onWelcome?.(frame.hostId, frame);
        return;
      case "error":
        this.log.warn("control plane reported an error", { code: frame.code, message: frame.message });
        return;
      default:
        this.opts.onFrame(frame);
    }
  }

  private startHeartbeat(intervalMs: number): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    // Never hammer the control plane, whatever it asks.
    const every = Math.max(intervalMs, 25);
    if (this.pingTimer) clearInterval(this.pingTimer);
    // Pings run on their own, shorter clock than heartbeats: a peer that answered none of the
    // last three (no pong, no frame) is gone (half-open TCP, a cut network); dial again.
    this.pingTimer = setInterval(
      () => {
        const ws = this.ws;
        if (!ws || ws.readyState !== WebSocket.OPEN) return;
        if (this.missedPongs >= 3) {
          this.log.warn("control plane stopped answering pings; reconnecting");
          ws.terminate();
          return;
        }
        this.missedPongs += 1;
        ws.ping();
      },
      Math.max(Math.min(every, AGENT_PING_MS), 25),
    );
    this.heartbeatTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      this.opts.heartbeat().then(
        (hb) => this.send(hb),
        (err) => this.log.warn("cannot build heartbeat", { err }),
      );
    }, every);
  }

  private clearTimers(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.heartbeatTimer = this.welcomeTimer = null;
  }
}

/** The `message` of a JSON error body, else a bounded piece of the text. */
export function serverMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed?.message === "string") return parsed.message.slice(0, 500);
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 200);
}
