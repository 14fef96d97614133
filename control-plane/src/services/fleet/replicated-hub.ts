import { randomUUID } from "node:crypto";
import { PROTOCOL_VERSION, Rpc, type RpcResult } from "@supamanager/shared";
import { and, eq, isNull, sql } from "drizzle-orm";
import pg from "pg";
import { z } from "zod";
import { hosts, jobs, projects } from "../../db/schema.js";
import type { AppDeps } from "../../deps.js";
import { ApiError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import {
  CLOSE,
  type HostConnection,
  type Hub,
  hostOffline,
  type LocalHub,
  type RpcRequest,
  type SessionRegistry,
} from "./hub.js";
import { awaitRpcAnswer, claimRpc, parkRpc, rpcClaimed, storeRpcAnswer, withdrawUnclaimedRpc } from "./rpc-mailbox.js";
import { isOnline } from "./status.js";

/**
 * The hub of a Node replica that shares its PostgreSQL database with other replicas (ADR 0014).
 *
 * Each replica holds the sockets of the agents that happened to connect to it (a LocalHub).
 * Everything a replica cannot do itself goes through the database: kicks and disconnects are
 * NOTIFY messages on one channel that the replica holding the host acts on, and RPCs are parked
 * in agent_rpcs (rpc-mailbox.ts) — the NOTIFY only says "row X is for host Y", never carries the
 * request, so the 8000-byte payload limit never matters and nothing secret goes through it.
 *
 * One dedicated connection per process LISTENs. Postgres delivers a notification to every
 * listening session that is connected when it commits, so notifications are lost only while the
 * listener is down; that window is closed by kicking every locally held host after the listener
 * reconnects, by probing the listener so a silently dead connection is noticed, and by a slow
 * periodic kick of every held host (which also covers a sender whose NOTIFY failed).
 */

/** The channel every replica of one database listens on. */
export const FLEET_CHANNEL = "supamanager_fleet";

const Id = z.string().min(1).max(128);
const RpcRequestSchema = Rpc.omit({ v: true, type: true, id: true });

const Notification = z.discriminatedUnion("op", [
  z.object({ op: z.literal("kick"), from: z.string().max(64), hostId: Id }),
  z.object({
    op: z.literal("disconnect"),
    from: z.string().max(64),
    hostId: Id,
    code: z.number().int().min(4000).max(4999),
    reason: z.string().max(120),
  }),
  z.object({ op: z.literal("rpc"), from: z.string().max(64), hostId: Id, id: Id }),
  z.object({ op: z.literal("rpc_claimed"), from: z.string().max(64), id: Id }),
  z.object({ op: z.literal("rpc_done"), from: z.string().max(64), id: Id }),
  /** A replica welcomed the host; `at` is the database's clock in microseconds (a bigint as text). */
  z.object({ op: z.literal("registered"), from: z.string().max(64), hostId: Id, at: z.string().regex(/^\d{1,20}$/) }),
]);
type Notification = z.infer<typeof Notification>;

/** Codes of errors the holding replica relays to the requester as `relay:<code>` rpc results. */
const RELAY_PREFIX = "relay:";
const RELAYED = new Set(["unavailable", "gateway_timeout", "payload_too_large", "bad_gateway"]);

export interface ReplicatedHubOptions {
  /** The PostgreSQL URL the LISTEN connection opens (the same database as deps.database). */
  url: string;
  channel?: string;
  /** How long a parked RPC may stay unclaimed before the requester answers 503 (host offline). */
  claimMs?: number;
  /** Interval of the listener's liveness probe (`select 1`). */
  probeMs?: number;
  /** Interval of the safety kick of every locally held host (0 = off). */
  safetyKickMs?: number;
  /** Listener reconnect backoff: first delay and cap. */
  reconnectBaseMs?: number;
  reconnectCapMs?: number;
  /** Extra wait, beyond the request's timeout and the session's own grace, for a relayed answer. */
  relayGraceMs?: number;
}

type HubDeps = Pick<AppDeps, "database" | "clock" | "config" | "logger">;

export class ReplicatedHub implements Hub, SessionRegistry {
  /** This process's name on the channel (ignores its own notifications where it already acted). */
  readonly replicaId = `r_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
  readonly #channel: string;
  readonly #opts: Required<Omit<ReplicatedHubOptions, "channel">>;
  readonly #log: Logger;
  /** Connections registered through this hub, with the database time their registration was announced. */
  readonly #registered = new Map<string, { conn: HostConnection; at: bigint | undefined }>();
  /** RPC ids this process waits on → wake-up callbacks (rpc_claimed / rpc_done). */
  readonly #waiters = new Map<string, Set<() => void>>();
  #client: pg.Client | null = null;
  #stopped = false;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #safetyTimer: NodeJS.Timeout | undefined;
  #listening: { promise: Promise<void>; resolve: () => void };

  constructor(
    readonly local: LocalHub,
    private readonly deps: HubDeps,
    opts: ReplicatedHubOptions,
  ) {
    this.#channel = opts.channel ?? FLEET_CHANNEL;
    // LISTEN takes an identifier, not a parameter: only a plain lower-case name is accepted.
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.#channel)) throw new Error(`invalid channel name ${this.#channel}`);
    this.#opts = {
      url: opts.url,
      claimMs: opts.claimMs ?? 1_500,
      probeMs: opts.probeMs ?? 10_000,
      safetyKickMs: opts.safetyKickMs ?? 60_000,
      reconnectBaseMs: opts.reconnectBaseMs ?? 250,
      reconnectCapMs: opts.reconnectCapMs ?? 10_000,
      relayGraceMs: opts.relayGraceMs ?? 3_000,
    };
    this.#log = deps.logger.child({ component: "replicated-hub", replica: this.replicaId });
    this.#listening = deferred();
  }

  /** Open the LISTEN connection (fails if the database cannot be reached) and start the timers. */
  async start(): Promise<void> {
    await this.#connect();
    this.#probeTimer = setInterval(() => void this.#probe(), this.#opts.probeMs);
    this.#probeTimer.unref();
    if (this.#opts.safetyKickMs > 0) {
      this.#safetyTimer = setInterval(() => void this.#safety(), this.#opts.safetyKickMs);
      this.#safetyTimer.unref();
    }
  }

  /** Stop listening and end the connection (shutdown). Held sockets are the LocalHub's to close. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#probeTimer);
    clearInterval(this.#safetyTimer);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  /** Whether the LISTEN connection is up. */
  get listening(): boolean {
    return this.#client !== null;
  }

  /** Resolves once the LISTEN connection is (again) up; for tests and readiness. */
  whenListening(): Promise<void> {
    return this.#listening.promise;
  }

  // ─── SessionRegistry ───────────────────────────────────────────────────────────────────────

  /** Frame budgets are per replica: a host's connection is held by one replica at a time. */
  get frameBudgets() {
    return this.local.frameBudgets;
  }

  get livenessWrites() {
    return this.local.livenessWrites;
  }

  register(hostId: string, conn: HostConnection): void {
    this.local.register(hostId, conn);
    const entry: { conn: HostConnection; at: bigint | undefined } = { conn, at: undefined };
    this.#registered.set(hostId, entry);
    // Tell the other replicas, so one still holding an older (half-open) socket of this host
    // closes it instead of taking RPCs it can no longer deliver. The database's clock orders
    // the two registrations, whatever the replicas' own clocks say.
    void this.deps.database.db
      .execute(
        sql`with t as (select (extract(epoch from clock_timestamp()) * 1000000)::bigint::text as at)
            select at, pg_notify(${this.#channel}, json_build_object(
              'op', 'registered', 'from', ${this.replicaId}::text, 'hostId', ${hostId}::text, 'at', at)::text) as sent
            from t`,
      )
      .then(
        (res) => {
          const at = (res as { rows?: { at?: string }[] }).rows?.[0]?.at;
          if (at && this.#registered.get(hostId) === entry) entry.at = BigInt(at);
        },
        (err: unknown) => this.#log.warn("announcing a connection failed", { hostId, err }),
      );
  }

  unregister(hostId: string, conn: HostConnection): void {
    if (this.#registered.get(hostId)?.conn === conn) this.#registered.delete(hostId);
    this.local.unregister(hostId, conn);
  }

  // ─── Hub ───────────────────────────────────────────────────────────────────────────────────

  async kick(hostId: string): Promise<void> {
    if (this.local.kickLocal(hostId)) return;
    await this.#tryNotify({ op: "kick", from: this.replicaId, hostId });
  }

  async disconnect(hostId: string, code: number, reason: string): Promise<void> {
    this.#registered.delete(hostId);
    this.local.disconnectLocal(hostId, code, reason);
    // Always: another replica may still hold an older socket of the host.
    await this.#tryNotify({ op: "disconnect", from: this.replicaId, hostId, code, reason: reason.slice(0, 120) });
  }

  /**
   * Held here, or some replica heard from the host within the offline grace (its heartbeats
   * update hosts.last_seen_at). After the holder dies this reads true for up to the grace;
   * an RPC in that window fails fast with 503 because nobody claims it.
   */
  async isConnected(hostId: string): Promise<boolean> {
    if (this.local.has(hostId)) return true;
    const [row] = await this.deps.database.db
      .select({ lastSeenAt: hosts.lastSeenAt })
      .from(hosts)
      .where(and(eq(hosts.id, hostId), isNull(hosts.removedAt)))
      .limit(1);
    return row !== undefined && isOnline(row.lastSeenAt, this.deps);
  }

  async rpc(hostId: string, request: RpcRequest): Promise<RpcResult> {
    if (this.local.has(hostId)) return this.local.rpc(hostId, request);
    const db = this.deps.database.db;
    const id = `rpc_${randomUUID()}`;
    await parkRpc(db, id, hostId, request);
    const wake = (fn: () => void) => this.#subscribe(id, fn);
    let claimed = false;
    try {
      await this.#notify({ op: "rpc", from: this.replicaId, hostId, id });
      claimed = await this.#waitForClaim(id, wake);
    } catch (err) {
      this.#log.warn("forwarding an rpc failed", { hostId, err });
    }
    // Nobody holds the host (or the notification could not be sent): withdraw, unless a holder
    // took the request at the last moment — then its answer is worth waiting for.
    if (!claimed && (await withdrawUnclaimedRpc(db, id))) throw hostOffline();
    const result = await awaitRpcAnswer(db, id, {
      timeoutMs: request.timeoutMs + this.#opts.relayGraceMs,
      pollMs: 250,
      wake,
    });
    if (!result) {
      throw new ApiError(
        "gateway_timeout",
        `The project's ${request.service} did not answer within ${Math.round(request.timeoutMs / 1000)} s`,
      );
    }
    return unwrapRelayed(result);
  }

  // ─── internals ─────────────────────────────────────────────────────────────────────────────

  #subscribe(id: string, fn: () => void): () => void {
    let set = this.#waiters.get(id);
    if (!set) {
      set = new Set();
      this.#waiters.set(id, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
    };
  }

  /** Poll (woken early by rpc_claimed) until the row is claimed or the claim deadline passes. */
  async #waitForClaim(id: string, wake: (fn: () => void) => () => void): Promise<boolean> {
    const deadline = Date.now() + this.#opts.claimMs;
    let wakeUp: (() => void) | undefined;
    const unsubscribe = wake(() => wakeUp?.());
    try {
      for (;;) {
        if (await rpcClaimed(this.deps.database.db, id)) return true;
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(100, left));
          wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wakeUp = undefined;
      }
    } finally {
      unsubscribe();
    }
  }

  async #notify(n: Notification): Promise<void> {
    await this.deps.database.db.execute(sql`select pg_notify(${this.#channel}, ${JSON.stringify(n)})`);
  }

  /** Kicks and disconnects never fail the request that caused them: the work waits in Postgres. */
  async #tryNotify(n: Notification): Promise<void> {
    try {
      await this.#notify(n);
    } catch (err) {
      this.#log.warn("fleet notification failed; the safety kick or the next reconnect delivers the work", {
        op: n.op,
        err,
      });
    }
  }

  #onNotification(payload: string | undefined): void {
    let parsed: Notification;
    try {
      const r = Notification.safeParse(JSON.parse(payload ?? ""));
      if (!r.success) throw new Error(r.error.message);
      parsed = r.data;
    } catch (err) {
      // Another version of the control plane, or someone else's NOTIFY on our channel.
      this.#log.warn("ignored an invalid fleet notification", { err });
      return;
    }
    switch (parsed.op) {
      case "kick":
        this.local.kickLocal(parsed.hostId);
        return;
      case "disconnect":
        if (parsed.from === this.replicaId) return;
        this.#registered.delete(parsed.hostId);
        this.local.disconnectLocal(parsed.hostId, parsed.code, parsed.reason);
        return;
      case "rpc":
        if (this.local.has(parsed.hostId)) void this.#serve(parsed.id, parsed.hostId);
        return;
      case "rpc_claimed":
      case "rpc_done":
        for (const fn of this.#waiters.get(parsed.id) ?? []) fn();
        return;
      case "registered": {
        if (parsed.from === this.replicaId) return;
        const mine = this.#registered.get(parsed.hostId);
        // Unknown age (our own announcement has not come back yet): keep it, it is likely the newer one.
        if (!mine || mine.at === undefined || mine.at >= BigInt(parsed.at)) return;
        this.#registered.delete(parsed.hostId);
        this.local.unregister(parsed.hostId, mine.conn);
        mine.conn.close(CLOSE.replaced, "the host connected to another control-plane replica");
        return;
      }
    }
  }

  /** The holder's side of a forwarded RPC: claim, run through the local session, store the answer. */
  async #serve(id: string, hostId: string): Promise<void> {
    const db = this.deps.database.db;
    try {
      const stored = await claimRpc(db, id, hostId, new Date(this.deps.clock.now()));
      if (stored === null) return; // another holder took it, it was withdrawn, or it is not this host's
      await this.#tryNotify({ op: "rpc_claimed", from: this.replicaId, id });
      let result: RpcResult;
      const request = RpcRequestSchema.safeParse(stored);
      if (!request.success) {
        result = relayed(id, new ApiError("bad_gateway", "The forwarded request was not a valid rpc"));
      } else {
        try {
          const answer = await this.local.rpc(hostId, request.data);
          // An agent's code can never pose as a relayed control-plane error.
          const { code, ...rest } = answer;
          result = { ...rest, ...(code && !code.startsWith(RELAY_PREFIX) ? { code } : {}), id };
        } catch (err) {
          if (!(err instanceof ApiError)) this.#log.error("forwarded rpc failed", { hostId, err });
          result = relayed(id, err);
        }
      }
      await storeRpcAnswer(db, hostId, result, new Date(this.deps.clock.now()));
      await this.#tryNotify({ op: "rpc_done", from: this.replicaId, id });
    } catch (err) {
      this.#log.warn("serving a forwarded rpc failed", { hostId, err });
    }
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#opts.url,
      keepAlive: true,
      application_name: `supamanager-fleet-${this.replicaId}`,
      query_timeout: 5_000,
      connectionTimeoutMillis: 10_000,
    });
    client.on("notification", (msg) => {
      if (msg.channel === this.#channel) this.#onNotification(msg.payload);
    });
    client.on("error", (err) => this.#lost(client, err));
    client.on("end", () => this.#lost(client));
    try {
      await client.connect();
      await client.query(`listen ${this.#channel}`);
    } catch (err) {
      client.removeAllListeners("end");
      await client.end().catch(() => {});
      throw err;
    }
    if (this.#stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#attempt = 0;
    this.#listening.resolve();
  }

  #lost(client: pg.Client, err?: unknown): void {
    if (this.#client !== client) return;
    this.#client = null;
    this.#listening = deferred();
    client.removeAllListeners("end");
    void client.end().catch(() => {});
    if (this.#stopped) return;
    this.#log.warn("fleet listener connection lost; reconnecting", { err });
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const ceiling = Math.min(this.#opts.reconnectCapMs, this.#opts.reconnectBaseMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 20);
    const delay = Math.floor(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#connect().then(
        () => {
          if (this.#stopped) return;
          this.#log.info("fleet listener reconnected");
          // Whatever was notified while we were not listening: send it now.
          this.#kickAllLocal();
        },
        (err: unknown) => {
          if (this.#stopped) return;
          this.#log.warn("fleet listener reconnect failed", { err });
          this.#scheduleReconnect();
        },
      );
    }, delay);
    this.#reconnectTimer.unref();
  }

  async #probe(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    try {
      await client.query("select 1");
    } catch (err) {
      this.#lost(client, err);
    }
  }

  #kickAllLocal(): void {
    for (const hostId of this.local.hostIds()) this.local.kickLocal(hostId);
  }

  /**
   * The safety kick (a sender whose NOTIFY was lost); abandoned agent_rpcs rows are swept by the
   * entry's maintenance tick. It kicks only the held hosts a kick could send something to (ADR
   * 0048): every change a kick delivers bumps a project's spec_version past its applied_version or
   * queues a job, so one statement over all held hosts finds them; a connection whose agent
   * reported since its last reconcile, or whose reconcile failed, is kicked whatever the database
   * says. Kicking all 10,000 held hosts was three queries each, once a minute, in one burst.
   */
  async #safety(): Promise<void> {
    const held = this.local.hostIds();
    if (held.length === 0) return;
    let due: Set<string>;
    try {
      // One array parameter, however many hosts are held (an IN list would take one each).
      const ids = sql.param(held);
      const res = await this.deps.database.db.execute(sql`
        select ${projects.hostId} as host_id from ${projects}
         where ${projects.hostId} = any(${ids}::text[]) and ${projects.status} <> 'REMOVED'
           and ${projects.upgradeId} is null and ${projects.specVersion} > ${projects.appliedVersion}
        union
        select ${jobs.hostId} from ${jobs} where ${jobs.hostId} = any(${ids}::text[]) and ${jobs.status} = 'queued'`);
      due = new Set(((res as { rows?: { host_id: string }[] }).rows ?? []).map((r) => r.host_id));
    } catch (err) {
      this.#log.warn("safety kick: could not read which held hosts have work; kicking all of them", { err });
      this.#kickAllLocal();
      return;
    }
    for (const hostId of this.local.unsettledHostIds()) due.add(hostId);
    for (const hostId of due) this.local.kickLocal(hostId);
  }
}

function relayed(id: string, err: unknown): RpcResult {
  const e =
    err instanceof ApiError
      ? err
      : new ApiError("unavailable", "The project's host disconnected before answering; try again in a moment");
  return {
    v: PROTOCOL_VERSION,
    type: "rpc_result",
    id,
    error: e.message.slice(0, 4000),
    code: `${RELAY_PREFIX}${e.code}`,
  };
}

/** Turn a relayed control-plane error back into the ApiError the holder's session raised. */
function unwrapRelayed(result: RpcResult): RpcResult {
  if (!result.code?.startsWith(RELAY_PREFIX)) return result;
  const code = result.code.slice(RELAY_PREFIX.length);
  const message = result.error ?? "The project's host could not forward the request";
  if (RELAYED.has(code)) throw new ApiError(code as "unavailable", message);
  throw new ApiError("bad_gateway", message);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
