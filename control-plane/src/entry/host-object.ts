import { MAX_FRAME_BYTES, Rpc } from "@supamanager/shared";
import { z } from "zod";
import { ApiError } from "../errors.js";
import { FrameBudgets } from "../services/fleet/frame-budget.js";
import type { HostConnection, SessionRegistry } from "../services/fleet/hub.js";
import { CLOSE, hostOffline } from "../services/fleet/hub.js";
import { HostSession } from "../services/fleet/session.js";
import type { WorkerEnv, WorkerRuntime } from "./worker-deps.js";
import { workerRuntime } from "./worker-deps.js";
import { DisconnectBody, HOST_ID_HEADER } from "./worker-hub.js";
import { type CfWebSocket, type DurableObjectState, webSocketResponse, workersGlobals } from "./workers-types.js";

/**
 * Largest WebSocket message Cloudflare's runtime delivers to a Worker (1 MiB; above it the
 * socket is closed with 1009). The object enforces the same limit itself — local workerd
 * accepts more — so a frame over it closes the socket everywhere (the agent reconnects, a
 * waiting request gets 503); outgoing frames over it are refused as a RangeError, which the
 * session turns into 413 for an rpc. Our protocol allows MAX_FRAME_BYTES (4 MiB) on Node.
 */
export const WORKERS_MAX_MESSAGE_BYTES = Math.min(1024 * 1024, MAX_FRAME_BYTES);

/** Close code for a socket that sent nothing within SUPAMANAGER_HOST_OFFLINE_SECONDS. */
export const CLOSE_STALE = 4003;

/** The rpc the Worker asks the object to send (the frame minus envelope and id). */
const RpcBody = Rpc.omit({ v: true, type: true, id: true });

/** What a socket carries through hibernation (structured clone, kept by the runtime). */
const Attachment = z.object({
  hostId: z.string().min(1),
  /** The session said `welcome`: after an eviction it resumes as ready. */
  ready: z.boolean(),
  /** Milliseconds since the epoch of the last frame received (or of the accept). */
  lastFrameAt: z.number(),
});
type Attachment = z.infer<typeof Attachment>;

const encoder = new TextEncoder();

/**
 * One Durable Object per host (`HOSTS.idFromName(hostId)`): it accepts the agent's socket with
 * the hibernation API and drives the same HostSession as Node. The session lives in memory;
 * when the runtime evicts the object while the socket stays open, the next message re-creates
 * the session from the socket's attachment and resumes it as ready. A redeploy closes the
 * sockets instead; agents reconnect with backoff and resync from their inventory.
 *
 * Every event (message, internal request, alarm) runs in its own database scope: the Workers
 * runtime does not let one event use I/O objects (the Neon pool's sockets) of another.
 */
export class HostObject implements SessionRegistry {
  readonly #sessions = new Map<CfWebSocket, HostSession>();
  /** The socket whose session is being re-created (its constructor registers it). */
  #resuming: CfWebSocket | undefined;
  /** The host's frame budget, shared by its connections (lost with the object on eviction). */
  readonly frameBudgets = new FrameBudgets();

  constructor(
    private readonly state: DurableObjectState,
    private readonly env: WorkerEnv,
  ) {}

  #runtime(): Promise<WorkerRuntime> {
    return workerRuntime(this.env);
  }

  // ─── SessionRegistry: a newer welcomed connection replaces the older ones ──────────────────

  register(_hostId: string, conn: HostConnection): void {
    for (const ws of this.state.getWebSockets()) {
      if (ws === this.#resuming) continue;
      const session = this.#sessions.get(ws);
      if (session === conn) continue;
      // Also sockets of sessions an eviction dropped from memory.
      session?.close(CLOSE.replaced, "replaced by a newer connection");
      this.#sessions.delete(ws);
      safeClose(ws, CLOSE.replaced, "replaced by a newer connection");
    }
  }
  unregister(): void {}

  // ─── internal HTTP interface (reached only through this Worker's HOSTS binding) ────────────

  async fetch(request: Request): Promise<Response> {
    const rt = await this.#runtime();
    const path = new URL(request.url).pathname;
    try {
      const { result, done } = await rt.database.scoped(() => this.#route(rt, request, path));
      await done;
      return result;
    } catch (err) {
      if (err instanceof ApiError) {
        return Response.json({ code: err.code, message: err.message }, { status: err.status });
      }
      rt.deps.logger.error("host object request failed", { path, err });
      return Response.json({ code: "internal", message: "Internal error" }, { status: 500 });
    }
  }

  async #route(rt: WorkerRuntime, request: Request, path: string): Promise<Response> {
    switch (`${request.method} ${path}`) {
      case "GET /connect":
        return this.#accept(rt, request);
      case "POST /kick": {
        const session = this.#live(rt);
        if (session) {
          session.kick();
          // Stay in this event (and its database scope) until the applies went out.
          await session.idle();
        }
        return new Response(null, { status: 204 });
      }
      case "POST /disconnect": {
        const body = DisconnectBody.safeParse(await request.json().catch(() => null));
        if (!body.success) throw new ApiError("bad_request", "disconnect needs a code (4000-4999) and a reason");
        for (const ws of this.state.getWebSockets()) {
          this.#sessions.get(ws)?.close(body.data.code, body.data.reason);
          this.#sessions.delete(ws);
          safeClose(ws, body.data.code, body.data.reason);
        }
        return new Response(null, { status: 204 });
      }
      case "GET /connected":
        return Response.json({ connected: this.#live(rt) !== undefined });
      case "POST /rpc": {
        const session = this.#live(rt);
        if (!session) throw hostOffline();
        const body = RpcBody.safeParse(await request.json().catch(() => null));
        if (!body.success) throw new ApiError("bad_request", "Invalid rpc request");
        const result = await session.rpc(body.data);
        return Response.json(result);
      }
      default:
        return Response.json({ code: "not_found", message: "No such host object route" }, { status: 404 });
    }
  }

  async #accept(rt: WorkerRuntime, request: Request): Promise<Response> {
    const hostId = request.headers.get(HOST_ID_HEADER);
    if (!hostId || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError("bad_request", "Expected an authenticated WebSocket upgrade");
    }
    const pair = new workersGlobals.WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.state.acceptWebSocket(server, [hostId]);
    const now = rt.deps.clock.now();
    server.serializeAttachment({ hostId, ready: false, lastFrameAt: now } satisfies Attachment);
    this.#sessions.set(server, this.#newSession(rt, server, hostId, false));
    await this.#armAlarm(rt, now);
    rt.deps.logger.info("agent connected", { hostId });
    return webSocketResponse(client);
  }

  #newSession(rt: WorkerRuntime, ws: CfWebSocket, hostId: string, resumeReady: boolean): HostSession {
    return new HostSession(
      rt.deps,
      hostId,
      {
        send: (text) => {
          // Refused before the runtime would close the socket for it (see WORKERS_MAX_MESSAGE_BYTES).
          if (encoder.encode(text).length > WORKERS_MAX_MESSAGE_BYTES) {
            throw new RangeError(`frame exceeds the Workers WebSocket limit of ${WORKERS_MAX_MESSAGE_BYTES} bytes`);
          }
          ws.send(text);
        },
        close: (code, reason) => safeClose(ws, code, reason),
      },
      this,
      { resumeReady },
    );
  }

  /** The socket's session; re-created from its attachment after an eviction. */
  #sessionFor(rt: WorkerRuntime, ws: CfWebSocket): HostSession | undefined {
    const existing = this.#sessions.get(ws);
    if (existing) return existing;
    const att = attachment(ws);
    if (!att) return undefined;
    this.#resuming = ws;
    let session: HostSession;
    try {
      session = this.#newSession(rt, ws, att.hostId, att.ready);
    } finally {
      this.#resuming = undefined;
    }
    this.#sessions.set(ws, session);
    if (att.ready) rt.deps.logger.info("resumed agent session after eviction", { hostId: att.hostId });
    return session;
  }

  /** The welcomed session of an open, fresh socket (a stale one is closed instead). */
  #live(rt: WorkerRuntime): HostSession | undefined {
    const now = rt.deps.clock.now();
    let live: HostSession | undefined;
    for (const ws of this.state.getWebSockets()) {
      const att = attachment(ws);
      if (!att || ws.readyState !== 1) continue;
      if (this.#stale(rt, att, now)) {
        this.#closeStale(rt, ws, att);
        continue;
      }
      // In memory the session knows best; after an eviction the attachment says it was ready.
      const session = this.#sessions.get(ws) ?? (att.ready ? this.#sessionFor(rt, ws) : undefined);
      if (session?.ready) live = session;
    }
    return live;
  }

  // ─── hibernation API handlers ──────────────────────────────────────────────────────────────

  async webSocketMessage(ws: CfWebSocket, message: string | ArrayBuffer): Promise<void> {
    const rt = await this.#runtime();
    const session = this.#sessionFor(rt, ws);
    const att = attachment(ws);
    if (!session || !att) {
      safeClose(ws, 1011, "unknown connection");
      return;
    }
    att.lastFrameAt = rt.deps.clock.now();
    ws.serializeAttachment(att);
    const size = typeof message === "string" ? encoder.encode(message).length : message.byteLength;
    if (size > WORKERS_MAX_MESSAGE_BYTES) {
      // What the platform does to such a message (local workerd allows more): enforced here so
      // that every environment behaves like production. Waiting requests get 503.
      rt.deps.logger.warn("agent frame over the Workers message limit: closing", { hostId: att.hostId, size });
      session.closed();
      this.#sessions.delete(ws);
      safeClose(ws, 1009, "message too large");
      return;
    }
    const raw = typeof message === "string" ? message : new Uint8Array(message);
    const { done } = await rt.database.scoped(() => session.receive(raw));
    if (session.ready && !att.ready) {
      att.ready = true;
      ws.serializeAttachment(att);
    }
    await done;
  }

  async webSocketClose(ws: CfWebSocket, code: number): Promise<void> {
    const rt = await this.#runtime();
    this.#sessions.get(ws)?.closed();
    this.#sessions.delete(ws);
    // Completes the closing handshake (the runtime does not answer a client's close by itself
    // on older compatibility dates).
    safeClose(ws, 1000, "closed");
    rt.deps.logger.info("agent disconnected", { hostId: attachment(ws)?.hostId, code });
  }

  async webSocketError(ws: CfWebSocket, error: unknown): Promise<void> {
    const rt = await this.#runtime();
    // E.g. a message over WORKERS_MAX_MESSAGE_BYTES: the runtime fails the socket; close it
    // properly so the agent notices at once and reconnects.
    rt.deps.logger.warn("agent socket error", { hostId: attachment(ws)?.hostId, err: error });
    this.#sessions.get(ws)?.closed();
    this.#sessions.delete(ws);
    safeClose(ws, 1009, "message too large or socket failed");
  }

  /**
   * Liveness: `hosts.last_seen_at` already makes the host read `offline` after
   * SUPAMANAGER_HOST_OFFLINE_SECONDS (at read time, on every runtime), and kicks, RPCs and
   * isConnected check the socket's last frame themselves (#live). The alarm is the janitor: it
   * closes sockets silent for longer than the offline grace (a half-open connection never
   * sends a close) with 4003 and logs it. Alarms are billed as requests, one each, while
   * heartbeats are billed 20:1; so the alarm does not chase every heartbeat: it fires at the
   * earliest socket's deadline but never sooner than SUPAMANAGER_STALE_SWEEP_SECONDS after the
   * previous one, and is not re-armed once no socket is left.
   */
  async alarm(): Promise<void> {
    const rt = await this.#runtime();
    const now = rt.deps.clock.now();
    const graceMs = rt.deps.config.fleet.hostOfflineSeconds * 1000;
    let deadline: number | undefined;
    for (const ws of this.state.getWebSockets()) {
      const att = attachment(ws);
      if (!att) continue;
      if (this.#stale(rt, att, now)) this.#closeStale(rt, ws, att);
      else deadline = Math.min(deadline ?? Number.POSITIVE_INFINITY, att.lastFrameAt + graceMs);
    }
    if (deadline !== undefined) {
      // Also never "now": Workers' clock only advances across I/O, so that could spin.
      await this.state.storage.setAlarm(Math.max(deadline, now + rt.staleSweepSeconds * 1000, now + 1000));
    }
  }

  #stale(rt: WorkerRuntime, att: Attachment, now: number): boolean {
    return now - att.lastFrameAt >= rt.deps.config.fleet.hostOfflineSeconds * 1000;
  }

  #closeStale(rt: WorkerRuntime, ws: CfWebSocket, att: Attachment): void {
    rt.deps.logger.warn("agent silent for longer than the offline grace: closing its socket", {
      hostId: att.hostId,
      lastFrameAt: new Date(att.lastFrameAt).toISOString(),
    });
    this.#sessions.get(ws)?.close(CLOSE_STALE, "no frames within the offline grace");
    this.#sessions.delete(ws);
    safeClose(ws, CLOSE_STALE, "no frames within the offline grace");
  }

  async #armAlarm(rt: WorkerRuntime, from: number): Promise<void> {
    const at = from + Math.max(rt.deps.config.fleet.hostOfflineSeconds, rt.staleSweepSeconds) * 1000;
    const current = await this.state.storage.getAlarm();
    if (current === null || current > at) await this.state.storage.setAlarm(at);
  }
}

function attachment(ws: CfWebSocket): Attachment | undefined {
  const parsed = Attachment.safeParse(ws.deserializeAttachment());
  return parsed.success ? parsed.data : undefined;
}

function safeClose(ws: CfWebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}
