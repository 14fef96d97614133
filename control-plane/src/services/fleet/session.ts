import { randomUUID } from "node:crypto";
import {
  type AgentFrame,
  type DecodeResult,
  decodeAgentFrame,
  type ErrorFrame,
  encodeFrame,
  type Hello,
  type IngressStatus,
  type InventoryItem,
  PROTOCOL_VERSION,
  type RpcResult,
  type ServerFrame,
} from "@supamanager/shared";
import { and, eq, inArray, isNull, lt, ne, or, sql } from "drizzle-orm";
import { prepared } from "../../db/prepared.js";
import { hosts, projects } from "../../db/schema.js";
import type { AppDeps } from "../../deps.js";
import { ApiError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { jobsToSend, loseJobsOfRestartedAgent, recordJobResult } from "../jobs/jobs.js";
import { AGENT_FRAME_BURST, AGENT_FRAME_RATE, type FrameBudget, FrameBudgets } from "./frame-budget.js";
import { CLOSE, type HostConnection, type RpcRequest, type SessionRegistry } from "./hub.js";
import type { LivenessWrites } from "./liveness-writes.js";
import { buildApply, recordApplied, recordHealth } from "./reconcile.js";

/** Extra wait beyond an RPC's own timeout, for the agent's timeout answer to arrive. */
const RPC_GRACE_MS = 2_000;

/**
 * Liveness of the link, on transports that can ping (Node's `ws`): every LINK_PING_MS the control
 * plane pings a link it heard nothing from (no frame, no pong) since the last tick; after
 * LINK_MISSED_PINGS such ticks in a row the link is dead and the socket is cut, so the host reads
 * offline. Each RPC also pings and answers
 * 503 when nothing is heard within LINK_PROBE_MS, instead of waiting out its whole timeout on a
 * link that died since the last ping.
 */
export const LINK_PING_MS = 5_000;
export const LINK_MISSED_PINGS = 3;
export const LINK_PROBE_MS = 1_500;

interface PendingRpc {
  resolve: (r: RpcResult) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
  probe?: NodeJS.Timeout;
}

const hostGone = () =>
  new ApiError("unavailable", "The project's host disconnected before answering; try again in a moment");

const linkSilent = (silentMs: number) =>
  new ApiError(
    "unavailable",
    `The project's host is not answering: its agent's link has been silent for ${Math.round(silentMs / 1000)} s and did not answer a ping within ${LINK_PROBE_MS / 1000} s (the host is offline or cut off); try again once it is back online`,
  );

/** The runtime's socket, as the session sees it (a Node `ws`, a Durable Object's WebSocket, …). */
export interface SessionTransport {
  send(text: string): void;
  close(code: number, reason: string): void;
  /** Send a protocol-level ping (the peer's pong is reported through HostSession.heard()). */
  ping?(): void;
  /** Drop the connection at once, without a closing handshake (a dead peer would never answer it). */
  terminate?(): void;
}

export interface SessionOptions {
  /**
   * Resume a connection that was already welcomed by an earlier instance of this session (a
   * Durable Object evicted while its hibernated socket stayed open): start as ready without a
   * new hello. What the lost instance remembered (sent applies, reported states, sent jobs) is
   * gone, so a later kick may send an apply or a running job again; both are idempotent on the
   * agent (applies by version, jobs by id).
   */
  resumeReady?: boolean;
}

type Capacity = Hello["capacity"];

const capacityColumns = (c: Capacity) => ({
  cpus: c.cpus,
  memTotalBytes: c.memTotalBytes,
  memFreeBytes: c.memFreeBytes,
  memReservedBytes: c.memReservedBytes,
  load1: String(c.load1),
});

/** Slack kept between a live host's last write and the offline grace (late frames, slow writes). */
export const LIVENESS_MARGIN_SECONDS = 5;

/**
 * How long a connected host's row may go without a last_seen_at write (ADR 0034). A host that
 * heartbeats every H seconds and is written whenever its row is at least this old has a row at
 * most (this + H) seconds old while it is alive, which stays under the offline grace N by the
 * margin, so no replica ever reads a live host offline; a host that stops reads offline at most
 * N seconds after its last write, never later than N after its last frame. When N leaves no room
 * (N − H − margin ≤ H/2) every regular heartbeat writes, as before.
 */
export function livenessWriteMs(fleet: { hostOfflineSeconds: number; heartbeatSeconds: number }): number {
  const slack = fleet.hostOfflineSeconds - fleet.heartbeatSeconds - LIVENESS_MARGIN_SECONDS;
  return Math.max(fleet.heartbeatSeconds / 2, slack) * 1000;
}

/**
 * Did the capacity change enough to write it before the liveness interval is up? Placement reads
 * cpus, total and reserved memory (exact); free memory and load are shown in the host list and
 * written when they move by a sixteenth of the memory or by one.
 */
export function capacityMoved(before: Capacity, now: Capacity): boolean {
  return (
    before.cpus !== now.cpus ||
    before.memTotalBytes !== now.memTotalBytes ||
    before.memReservedBytes !== now.memReservedBytes ||
    Math.abs(before.memFreeBytes - now.memFreeBytes) >= Math.max(now.memTotalBytes, 1) / 16 ||
    Math.abs(before.load1 - now.load1) >= 1
  );
}

/**
 * One agent connection, runtime-neutral: it takes raw frames and a `send` function, so the Node
 * `ws` server and (later) a Workers Durable Object drive the same logic. Frames are handled one
 * at a time in arrival order; a bad frame is answered with an `error` frame and logged, and never
 * throws out of `receive` (so it cannot take the process or other hosts down).
 */
export class HostSession implements HostConnection {
  #state: "awaiting_hello" | "ready" | "closed" = "awaiting_hello";
  #queue: Promise<void> = Promise.resolve();
  /** What the agent last reported per project (inventory, then `applied` frames). */
  readonly #reported = new Map<string, InventoryItem["state"]>();
  /** What this connection already sent per project, so a kick does not resend the same apply. */
  readonly #sent = new Map<string, string>();
  /** Jobs sent on this connection (a reconnect re-sends the ones still running). */
  readonly #sentJobs = new Set<string>();
  /** REMOVED projects the agent still reported running: they get a `deleted` apply. */
  readonly #orphans = new Set<string>();
  readonly #log: Logger;
  /** RPCs sent on this connection and not answered yet, by id. */
  readonly #pending = new Map<string, PendingRpc>();
  /** Signs of life (frames and pongs) heard so far, and when the last one came (wall clock). */
  #heard = 0;
  #lastHeardAt = Date.now();
  #heardAtLastPing = 0;
  #missedPings = 0;
  #pingTimer: NodeJS.Timeout | null = null;
  /** What this host's frames may still cost (frame-budget.ts); shared with its other connections. */
  readonly #budget: FrameBudget;
  /** Frames received on this connection, for the log line of a rate-limit close. */
  #frames = 0;
  /** The capacity last written to the host's row, and when (clock ms): see #heartbeat. */
  #lastTouch: { capacity: Capacity; at: number } | null = null;
  /** The ingress state last written to the host's row (JSON), so heartbeats write only changes. */
  #lastIngress: string | null = null;
  /**
   * Whether a kick could send something the database alone does not show (HostConnection
   * .unsettled): until the first reconcile, after an `applied` report changed what the agent
   * runs, and after a failed reconcile. The safety kick always reaches such a connection.
   */
  #unsettled = true;
  /** When (clock ms) the last heartbeat was heard, written or not. */
  #lastBeatAt: number | null = null;
  /**
   * The protocol version the agent speaks (its frames' `v`): everything sent to it carries that
   * version, so an agent one version behind keeps understanding us (ADR 0040).
   */
  #agentProtocol = PROTOCOL_VERSION;

  constructor(
    private readonly deps: AppDeps,
    readonly hostId: string,
    private readonly transport: SessionTransport,
    /** Where the welcomed session registers so kicks and RPCs of this process reach it. */
    private readonly registry: SessionRegistry,
    opts: SessionOptions = {},
  ) {
    this.#log = deps.logger.child({ hostId });
    this.#budget = (registry.frameBudgets ?? new FrameBudgets()).for(hostId, () => deps.clock.now());
    if (transport.ping) {
      this.#pingTimer = setInterval(() => this.#pingTick(), LINK_PING_MS);
      this.#pingTimer.unref?.();
    }
    if (opts.resumeReady) {
      this.#state = "ready";
      this.registry.register(hostId, this);
    }
  }

  get ready(): boolean {
    return this.#state === "ready";
  }

  get unsettled(): boolean {
    return this.#unsettled;
  }

  /** The agent showed it is alive (a frame, or a pong to our ping). */
  heard(): void {
    this.#heard++;
    this.#lastHeardAt = Date.now();
  }

  #pingTick(): void {
    if (this.#state === "closed") {
      this.#stopPinging();
      return;
    }
    if (this.#heard === this.#heardAtLastPing) this.#missedPings++;
    else this.#missedPings = 0;
    this.#heardAtLastPing = this.#heard;
    if (this.#missedPings >= LINK_MISSED_PINGS) {
      this.#log.warn("agent link silent; dropping the connection", {
        silentMs: Date.now() - this.#lastHeardAt,
        missedPings: this.#missedPings,
      });
      this.#stopPinging();
      try {
        if (this.transport.terminate) this.transport.terminate();
        else this.transport.close(1001, "no answer to pings");
      } catch (err) {
        this.#log.warn("dropping a silent agent socket failed", { err });
      }
      this.closed();
      return;
    }
    // A link that showed life since the last tick needs no ping (ADR 0042): its frames already
    // prove it, and pinging 10,000 agents every tick was thousands of frames a second each way.
    // A quiet tick pings, so a dead link is still cut after LINK_MISSED_PINGS quiet ticks.
    if (this.#missedPings === 0) return;
    try {
      this.transport.ping?.();
    } catch (err) {
      this.#log.warn("pinging the agent failed", { err });
    }
  }

  #stopPinging(): void {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#pingTimer = null;
  }

  /** Handle one raw frame. Resolves when it (and everything before it) has been processed. */
  receive(raw: string | Uint8Array): Promise<void> {
    // Nothing more is read from a connection we closed (a flood's queued frames included).
    if (this.#state === "closed") return this.#queue;
    this.heard();
    this.#frames++;
    const decoded = decodeAgentFrame(raw);
    if (decoded.ok) this.#agentProtocol = decoded.frame.v;
    // An RPC answer has a request waiting on it and no ordering with other frames: deliver it
    // at once instead of behind queued database work (heartbeats, health). Answers to our own
    // requests take no token; anything else does, and a host out of tokens is cut off.
    const answer = decoded.ok && decoded.frame.type === "rpc_result" && this.#pending.has(decoded.frame.id);
    if (!answer && !this.#budget.take()) {
      this.#rateLimited();
      return this.#queue;
    }
    if (decoded.ok && decoded.frame.type === "rpc_result" && this.#state === "ready") {
      this.#deliver(decoded.frame);
      return this.#queue;
    }
    return this.#enqueue(() => this.#handle(decoded));
  }

  /** The host sent more frames than its budget: close with CLOSE.rateLimited, once, and say so. */
  #rateLimited(): void {
    this.#log.warn("agent frames over the rate limit; closing the connection", {
      closeCode: CLOSE.rateLimited,
      framesOnConnection: this.#frames,
      burst: this.#budget.burst,
      perSecond: this.#budget.perSecond,
    });
    this.close(
      CLOSE.rateLimited,
      `frame rate limit: more than ${AGENT_FRAME_RATE} frames/s (burst ${AGENT_FRAME_BURST}); reconnect with backoff`,
    );
    // Requests stop going to this connection now, not once the peer completes the close.
    this.registry.unregister(this.hostId, this);
  }

  /**
   * Send an `rpc` and wait for its answer (see HostConnection.rpc). The wait lasts the request's
   * own timeout plus a grace, so the agent's timeout answer (which says which service was slow)
   * normally arrives first. A result arriving after the wait ended is dropped.
   */
  rpc(request: RpcRequest): Promise<RpcResult> {
    if (this.#state !== "ready") return Promise.reject(hostGone());
    const id = `rpc_${randomUUID()}`;
    return new Promise<RpcResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new ApiError(
            "gateway_timeout",
            `The project's ${request.service} did not answer within ${Math.round(request.timeoutMs / 1000)} s`,
          ),
        );
      }, request.timeoutMs + RPC_GRACE_MS);
      const pending: PendingRpc = { resolve, reject, timer };
      this.#pending.set(id, pending);
      if (this.transport.ping) {
        // Anything heard within the probe window (normally the pong to this ping) shows the link
        // is alive; silence answers 503 now instead of after the request's whole timeout.
        const seen = this.#heard;
        pending.probe = setTimeout(() => {
          if (this.#heard !== seen || this.#pending.get(id) !== pending) return;
          this.#pending.delete(id);
          clearTimeout(timer);
          reject(linkSilent(Date.now() - this.#lastHeardAt));
        }, LINK_PROBE_MS);
        try {
          this.transport.ping();
        } catch {
          // a failing ping shows up as silence
        }
      }
      try {
        this.transport.send(encodeFrame({ v: this.#agentProtocol, type: "rpc", id, ...request }));
      } catch (err) {
        clearTimeout(timer);
        if (pending.probe) clearTimeout(pending.probe);
        this.#pending.delete(id);
        // Never log the request itself: its body and headers may hold SQL and secrets.
        this.#log.warn("sending rpc to agent failed", { id, service: request.service, err });
        reject(err instanceof RangeError ? new ApiError("payload_too_large", "The request is too large") : hostGone());
      }
    });
  }

  /** Requests waiting for an answer on this connection. */
  get pendingRpcs(): number {
    return this.#pending.size;
  }

  #deliver(frame: RpcResult): void {
    const waiter = this.#pending.get(frame.id);
    if (!waiter) {
      this.#log.debug("rpc result with no waiter (timed out or unknown)", { id: frame.id });
      return;
    }
    this.#pending.delete(frame.id);
    clearTimeout(waiter.timer);
    if (waiter.probe) clearTimeout(waiter.probe);
    waiter.resolve(frame);
  }

  #failPending(): void {
    for (const [id, waiter] of this.#pending) {
      clearTimeout(waiter.timer);
      if (waiter.probe) clearTimeout(waiter.probe);
      waiter.reject(hostGone());
      this.#pending.delete(id);
    }
  }

  /** Resolves when every frame and kick queued so far has been handled. */
  idle(): Promise<void> {
    return this.#queue;
  }

  /** Send every apply the database wants and this connection has not sent yet. */
  kick(): void {
    void this.#enqueue(async () => {
      if (this.#state === "ready") await this.#reconcile();
    });
  }

  /** Close from our side (replaced, removed, shutting down). */
  close(code: number, reason: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#stopPinging();
    this.#failPending();
    try {
      this.transport.close(code, reason);
    } catch (err) {
      this.#log.warn("closing agent socket failed", { err });
    }
  }

  /** The socket closed (either side): forget the connection. */
  closed(): void {
    this.#state = "closed";
    this.#stopPinging();
    this.#failPending();
    this.registry.unregister(this.hostId, this);
    void this.#writeLastBeat();
  }

  /**
   * The connection ended: a heartbeat heard since the row's last write is written now, so the
   * host reads offline exactly SUPAMANAGER_HOST_OFFLINE_SECONDS after its last heartbeat (ADR 0034).
   */
  async #writeLastBeat(): Promise<void> {
    const beat = this.#lastBeatAt;
    if (beat === null || (this.#lastTouch !== null && this.#lastTouch.at >= beat)) return;
    this.#lastBeatAt = null;
    const at = new Date(beat);
    try {
      await this.deps.database.db
        .update(hosts)
        .set({ lastSeenAt: at })
        .where(
          and(
            eq(hosts.id, this.hostId),
            isNull(hosts.removedAt),
            or(isNull(hosts.lastSeenAt), lt(hosts.lastSeenAt, at)),
          ),
        );
    } catch (err) {
      this.#log.warn("could not record the last heartbeat of a closed connection", { err });
    }
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    this.#queue = this.#queue.then(task).catch((err: unknown) => {
      this.#unsettled = true;
      this.#log.error("agent frame handling failed", { err });
      this.#sendError("internal", "the control plane could not process this frame");
    });
    return this.#queue;
  }

  #send(frame: ServerFrame): void {
    if (this.#state === "closed") return;
    try {
      this.transport.send(encodeFrame({ ...frame, v: this.#agentProtocol }));
    } catch (err) {
      this.#log.warn("sending to agent failed", { err, type: frame.type });
    }
  }

  #sendError(code: ErrorFrame["code"], message: string): void {
    this.#send({ v: PROTOCOL_VERSION, type: "error", code, message });
  }

  async #handle(decoded: DecodeResult<AgentFrame>): Promise<void> {
    if (this.#state === "closed") return;
    if (!decoded.ok) {
      this.#log.warn("invalid agent frame", { code: decoded.error.code, message: decoded.error.message });
      this.#send(decoded.error);
      // An agent whose protocol we do not serve never gets a welcome: say why and hang up, rather
      // than let it wait for one (ADR 0040). Its operator reads the message in the agent's log.
      if (decoded.error.code === "unsupported_version" && this.#state === "awaiting_hello") {
        this.close(CLOSE.unsupportedVersion, "unsupported protocol version");
      }
      return;
    }
    const frame = decoded.frame;
    if (this.#state === "awaiting_hello") {
      if (frame.type !== "hello") {
        this.#log.warn("agent frame before hello", { type: frame.type });
        this.#sendError("out_of_order", `expected hello first, got ${frame.type}`);
        return;
      }
      await this.#hello(frame);
      return;
    }
    await this.#dispatch(frame);
  }

  async #dispatch(frame: AgentFrame): Promise<void> {
    switch (frame.type) {
      case "hello":
        this.#sendError("out_of_order", "hello was already received on this connection");
        return;
      case "heartbeat":
        await this.#heartbeat(frame.capacity, frame.ingress);
        return;
      case "applied": {
        this.#unsettled = true;
        const known = await recordApplied(this.deps, this.hostId, frame);
        if (!known) return this.#notOnHost(frame.ref, frame.type);
        this.#reported.set(frame.ref, frame.ok ? frame.desiredState : "failed");
        if (frame.ok && frame.desiredState === "deleted") this.#orphans.delete(frame.ref);
        return;
      }
      case "health": {
        const known = await recordHealth(this.deps, this.hostId, frame);
        if (!known) this.#notOnHost(frame.ref, frame.type);
        return;
      }
      case "rpc_result":
        this.#deliver(frame);
        return;
      case "job_result": {
        this.#unsettled = true;
        const known = await recordJobResult(this.deps, this.hostId, frame, this.#log);
        this.#sentJobs.delete(frame.jobId); // answered: it is never re-sent, so stop remembering it
        if (!known) {
          this.#log.warn("job result for a job not on this host", { jobId: frame.jobId });
          this.#sendError("unauthorized", `job ${frame.jobId} is not a job of this host`);
        }
        return;
      }
      case "error":
        this.#log.warn("agent reported an error", { code: frame.code, message: frame.message });
        return;
    }
  }

  #notOnHost(ref: string, type: string): void {
    this.#log.warn("agent frame for a project not on this host", { ref, type });
    this.#sendError("unauthorized", `project ${ref} is not on this host`);
  }

  /**
   * Heartbeats write the host's row only when the database needs it (ADR 0034): when the capacity
   * changed materially (capacityMoved), or when the row's last_seen_at is older than
   * livenessWriteMs — late enough to save writes, early enough that every replica reading the row
   * still sees a live host online. Every frame already counted as a sign of life in memory
   * (heard()), which is what this process's own link checks use. A flood of heartbeats writes at
   * most once per half interval unless its capacity keeps moving; such frames are bounded by the
   * frame budget.
   */
  async #heartbeat(capacity: Capacity, ingress: IngressStatus | undefined): Promise<void> {
    const now = this.deps.clock.now();
    this.#lastBeatAt = now;
    const last = this.#lastTouch;
    // A changed ingress state (ADR 0036) is written at once: operators read it from the host list.
    const ingressJson = ingress === undefined ? undefined : JSON.stringify(ingress);
    if (ingressJson !== undefined && ingressJson !== this.#lastIngress) {
      if (await this.#touch(capacity, { ingress: ingress ?? null })) this.#lastIngress = ingressJson;
      return;
    }
    if (last && now >= last.at && now - last.at < livenessWriteMs(this.deps.config.fleet)) {
      const floodMs = (this.deps.config.fleet.heartbeatSeconds * 1000) / 2;
      if (!capacityMoved(last.capacity, capacity) || now - last.at < floodMs) return;
    }
    const batch = this.registry.livenessWrites;
    if (batch) this.#touchBatched(batch, capacity, now);
    else await this.#touch(capacity);
  }

  /**
   * The heartbeat's write through the process's batch (ADR 0048): the frame queue does not wait
   * for it (the row is written within LIVENESS_FLUSH_MS), the write counts as done at once so the
   * next heartbeats do not repeat it, and a failed write is retried by the next heartbeat. A host
   * found removed is disconnected, as by #touch.
   */
  #touchBatched(batch: LivenessWrites, capacity: Capacity, at: number): void {
    const before = this.#lastTouch;
    const touch = { capacity, at };
    this.#lastTouch = touch;
    batch.write(this.hostId, capacity, at).then(
      (live) => {
        if (live) return;
        this.#sendError("unauthorized", "this host has been removed");
        this.close(CLOSE.removed, "host removed");
      },
      () => {
        // Logged by the batch; the next heartbeat writes again.
        if (this.#lastTouch === touch) this.#lastTouch = before;
      },
    );
  }

  /** Record liveness + capacity; a removed host (credential revoked) is disconnected. */
  async #touch(capacity: Capacity, extra: Partial<typeof hosts.$inferInsert> = {}): Promise<boolean> {
    const at = this.deps.clock.now();
    const db = this.deps.database.db;
    const values = { ...capacityColumns(capacity), lastSeenAt: new Date(at) };
    const [row] =
      Object.keys(extra).length === 0
        ? // A heartbeat's write: built once per database handle (ADR 0042).
          await prepared(db, "sm_host_heartbeat", (d, name) =>
            d
              .update(hosts)
              .set({
                cpus: sql`${sql.placeholder("cpus")}`,
                memTotalBytes: sql`${sql.placeholder("memTotalBytes")}`,
                memFreeBytes: sql`${sql.placeholder("memFreeBytes")}`,
                memReservedBytes: sql`${sql.placeholder("memReservedBytes")}`,
                load1: sql`${sql.placeholder("load1")}`,
                lastSeenAt: sql`${sql.placeholder("lastSeenAt")}`,
              })
              .where(and(eq(hosts.id, sql.placeholder("hostId")), isNull(hosts.removedAt)))
              .returning({ id: hosts.id })
              .prepare(name),
          ).execute({ ...values, hostId: this.hostId })
        : await db
            .update(hosts)
            .set({ ...values, ...extra })
            .where(and(eq(hosts.id, this.hostId), isNull(hosts.removedAt)))
            .returning({ id: hosts.id });
    if (row) {
      this.#lastTouch = { capacity, at };
      return true;
    }
    this.#sendError("unauthorized", "this host has been removed");
    this.close(CLOSE.removed, "host removed");
    return false;
  }

  async #hello(hello: Hello): Promise<void> {
    const [before] = await this.deps.database.db
      .select({ bootId: hosts.bootId, reachability: hosts.reachability })
      .from(hosts)
      .where(eq(hosts.id, this.hostId))
      .limit(1);
    const live = await this.#touch(hello.capacity, {
      agentVersion: hello.agentVersion,
      agentProtocol: hello.v,
      agentUpdateFailure: hello.updateFailure ?? null,
      compose: hello.compose,
      bootId: hello.bootId ?? null,
      ingress: hello.ingress ?? null,
    });
    if (hello.v < PROTOCOL_VERSION) {
      this.#log.warn("agent speaks the previous protocol version; update it", {
        agentVersion: hello.agentVersion,
        protocol: hello.v,
      });
    }
    if (!live) return;
    this.#lastIngress = hello.ingress ? JSON.stringify(hello.ingress) : null;
    // Another agent process (or one that cannot tell): jobs it was running are gone with the old one.
    if (!hello.bootId || before?.bootId !== hello.bootId) {
      const lost = await loseJobsOfRestartedAgent(this.deps, this.hostId, this.#log);
      if (lost > 0) this.#log.warn("failed jobs of a restarted agent", { lost });
    }
    this.#state = "ready";
    this.registry.register(this.hostId, this);
    this.#send({
      v: PROTOCOL_VERSION,
      type: "welcome",
      hostId: this.hostId,
      heartbeatIntervalMs: this.deps.config.fleet.heartbeatSeconds * 1000,
      // Where this runtime relays projects' traffic (Node), a host in tunnel mode opens its data connection.
      ...(this.deps.tunnelUpgrade ? { tunnel: before?.reachability === "tunnel" } : {}),
      // The agent version this fleet should run; agents on another one update themselves (ADR 0040).
      ...(this.deps.config.fleet.agentUpdate ? { agentUpdate: this.deps.config.fleet.agentUpdate } : {}),
    });
    await this.#adoptInventory(hello.inventory);
    await this.#reconcile();
  }

  /**
   * Take the agent's inventory as the truth about what it has applied: applied_version per
   * project (absent → 0, so a host that lost its disk gets everything again), and finish any
   * transition the agent completed while we were not listening (e.g. a control-plane restart
   * between `apply` and `applied`).
   */
  async #adoptInventory(inventory: InventoryItem[]): Promise<void> {
    const byRef = new Map(inventory.map((i) => [i.ref, i]));
    const db = this.deps.database.db;
    const rows = await db
      .select()
      .from(projects)
      .where(and(eq(projects.hostId, this.hostId), ne(projects.status, "REMOVED")));
    for (const p of rows) {
      const item = byRef.get(p.ref);
      byRef.delete(p.ref);
      if (item) this.#reported.set(p.ref, item.state);
      const applied = item?.appliedVersion ?? 0;
      if (applied !== p.appliedVersion) {
        await db.update(projects).set({ appliedVersion: applied }).where(eq(projects.id, p.id));
      }
      if (item && item.state === p.desiredState) {
        // Finishes the transition (in one transaction) if that version is the current spec.
        await recordApplied(this.deps, this.hostId, {
          ref: p.ref,
          version: item.appliedVersion,
          desiredState: p.desiredState,
          ok: true,
        });
      } else if (!item && p.desiredState === "deleted") {
        // Nothing of it is on the host: the teardown is complete.
        await recordApplied(this.deps, this.hostId, {
          ref: p.ref,
          version: p.specVersion,
          desiredState: "deleted",
          ok: true,
        });
      }
    }
    // Refs the agent runs that are not live projects of this host.
    const rest = [...byRef.values()].filter((i) => i.state !== "deleted");
    if (rest.length === 0) return;
    const removed = await db
      .select({ ref: projects.ref })
      .from(projects)
      .where(
        and(
          eq(projects.hostId, this.hostId),
          eq(projects.status, "REMOVED"),
          inArray(
            projects.ref,
            rest.map((i) => i.ref),
          ),
        ),
      );
    for (const r of removed) this.#orphans.add(r.ref);
    const unknown = rest.map((i) => i.ref).filter((ref) => !this.#orphans.has(ref));
    if (unknown.length > 0) this.#log.warn("agent runs projects this control plane does not place here", { unknown });
  }

  /** Send `apply` for every project whose spec is ahead of what the agent applied or reported. */
  async #reconcile(): Promise<void> {
    // Frames handled after this point set it again (they queue behind this reconcile).
    this.#unsettled = false;
    const db = this.deps.database.db;
    const [host] = await db
      .select({ bindAddress: hosts.bindAddress, reachability: hosts.reachability })
      .from(hosts)
      .where(eq(hosts.id, this.hostId))
      .limit(1);
    if (!host) return;
    const rows = await db
      .select()
      .from(projects)
      .where(and(eq(projects.hostId, this.hostId), ne(projects.status, "REMOVED")));
    for (const p of rows) {
      // An upgrade holds the project: its agent job owns the stack until it answers (ADR 0037).
      if (p.upgradeId !== null) continue;
      const reported = this.#reported.get(p.ref);
      const behind = p.specVersion > p.appliedVersion || (reported !== undefined && reported !== p.desiredState);
      if (!behind) continue;
      const key = `${p.specVersion}:${p.restartNonce}:${p.desiredState}`;
      if (this.#sent.get(p.ref) === key) continue;
      try {
        this.#send(await buildApply(this.deps, db, p, host));
        this.#sent.set(p.ref, key);
      } catch (err) {
        this.#unsettled = true;
        this.#log.error("could not build apply", { ref: p.ref, err });
      }
    }
    for (const job of await jobsToSend(this.deps, this.hostId, this.#sentJobs)) {
      this.#send(job);
      this.#sentJobs.add(job.jobId);
    }
    for (const ref of this.#orphans) {
      if (this.#sent.get(ref) === "orphan") continue;
      const [p] = await db.select().from(projects).where(eq(projects.ref, ref)).limit(1);
      if (!p) continue;
      this.#send({
        v: PROTOCOL_VERSION,
        type: "apply",
        ref,
        version: p.specVersion,
        desiredState: "deleted",
        restartNonce: p.restartNonce,
      });
      this.#sent.set(ref, "orphan");
    }
  }
}
