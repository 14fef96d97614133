import type { Rpc, RpcResult } from "@supamanager/shared";
import { ApiError } from "../../errors.js";
import { FrameBudgets } from "./frame-budget.js";
import type { LivenessWrites } from "./liveness-writes.js";

/**
 * The hub maps connected host ids to their live sessions in THIS process, so an API request that
 * changes desired state can `kick` the host and the apply goes out at once. It holds nothing
 * durable: when the host is not connected here the work simply waits in Postgres and is sent
 * on the next (re)connect. (Several Node replicas forward kicks through LISTEN/NOTIFY, see
 * replicated-hub.ts; a Workers deployment has one Durable Object per host. Both implement this interface.)
 */
export interface HostConnection {
  /** Send whatever the database says this host should apply and has not been sent yet. */
  kick(): void;
  /** Close the socket (code in the 4000-4999 application range). */
  close(code: number, reason: string): void;
  /**
   * Send an `rpc` and wait for its `rpc_result`. Rejects with an ApiError: 504 when no answer
   * arrives within the request's timeout (plus a grace for the agent's own timeout answer),
   * 503 when the connection closes first.
   */
  rpc(request: RpcRequest): Promise<RpcResult>;
  /**
   * Whether what the connection last sent may differ from what a kick would send now for reasons
   * the database cannot show (an agent's report since, a failed reconcile): the safety kick
   * reaches such a connection whatever the database says (replicated-hub.ts). Absent: always.
   */
  readonly unsettled?: boolean;
}

/** An `rpc` frame without the envelope (`v`, `type`) and id, which the connection assigns. */
export type RpcRequest = Omit<Rpc, "v" | "type" | "id">;

/** The answer when the host has no live connection in this process (see the note on Hub). */
export const hostOffline = (state?: { name: string; lastSeenAt: Date | null; removed?: boolean; now: number }) =>
  new ApiError(
    "unavailable",
    `The project's host is offline${state ? ` (${hostState(state)})` : ""}: its agent is not connected, try again later`,
  );

/** "host eu-1, removed" / "host eu-1, last heard from 42 s ago" / "host eu-1, never connected". */
function hostState(s: { name: string; lastSeenAt: Date | null; removed?: boolean; now: number }): string {
  if (s.removed) return `host ${s.name}, removed`;
  if (!s.lastSeenAt) return `host ${s.name}, never connected`;
  const ago = Math.max(0, Math.round((s.now - s.lastSeenAt.getTime()) / 1000));
  return `host ${s.name}, last heard from ${ago} s ago`;
}

/**
 * What services see of the fleet's live connections. Every method may cross a process boundary
 * (another Node replica, a Durable Object, API Gateway), so all of them are asynchronous; an
 * implementation must never lose work: desired state and jobs live in Postgres, and a kick that
 * reaches nobody is made good by the next (re)connect.
 */
export interface Hub {
  /** Send the host whatever the database says it should apply or run and has not been sent yet. */
  kick(hostId: string): Promise<void>;
  /** Close the host's connection, wherever it is held (host removed). */
  disconnect(hostId: string, code: number, reason: string): Promise<void>;
  /** Whether some process holds a live, welcomed connection of the host. */
  isConnected(hostId: string): Promise<boolean>;
  /**
   * Forward a request to a service of a project on the host and wait for the answer. Rejects
   * with 503 (hostOffline) when no process holds the host's connection.
   */
  rpc(hostId: string, request: RpcRequest): Promise<RpcResult>;
}

/**
 * Where a HostSession announces itself once the agent said hello, and leaves when its socket
 * closes. On Node this is the process's LocalHub (or the replicated hub wrapping it).
 */
export interface SessionRegistry {
  /** A newer connection for the same host replaces (and closes) the older one. */
  register(hostId: string, conn: HostConnection): void;
  /** Forget `conn` if it is still the host's current connection. */
  unregister(hostId: string, conn: HostConnection): void;
  /**
   * The hosts' frame budgets (frame-budget.ts), kept across their connections so that
   * reconnecting does not refill a bucket. Absent: each connection gets a bucket of its own.
   */
  readonly frameBudgets?: FrameBudgets;
  /**
   * Where heartbeats' row writes are gathered into one statement per interval (Node, ADR 0048).
   * Absent: each session writes its own rows (Durable Objects, Lambda, most tests).
   */
  readonly livenessWrites?: LivenessWrites;
}

/** Close codes the control plane uses. */
export const CLOSE = {
  replaced: 4000,
  removed: 4001,
  shuttingDown: 4002,
  /** The host's settings changed (reachability): reconnect to learn them from the welcome. */
  reconfigured: 4003,
  /** The agent sent frames faster than its budget allows (frame-budget.ts); 4029 as in HTTP 429. */
  rateLimited: 4029,
  /** The agent speaks a protocol version this control plane does not serve (ADR 0040). */
  unsupportedVersion: 4426,
} as const;

/** The connections held by this process: the whole hub for a single Node process. */
export class LocalHub implements Hub, SessionRegistry {
  readonly #hosts = new Map<string, HostConnection>();
  readonly frameBudgets = new FrameBudgets();
  /** Set by the Node entry (bootstrap), so that every session of the process shares one writer. */
  livenessWrites: LivenessWrites | undefined;

  register(hostId: string, conn: HostConnection): void {
    const old = this.#hosts.get(hostId);
    this.#hosts.set(hostId, conn);
    if (old && old !== conn) old.close(CLOSE.replaced, "replaced by a newer connection");
  }
  unregister(hostId: string, conn: HostConnection): void {
    if (this.#hosts.get(hostId) === conn) this.#hosts.delete(hostId);
    this.frameBudgets.release(hostId);
  }
  async kick(hostId: string): Promise<void> {
    this.kickLocal(hostId);
  }
  /** Kick the host if its connection is held here; whether it was. */
  kickLocal(hostId: string): boolean {
    const conn = this.#hosts.get(hostId);
    conn?.kick();
    return conn !== undefined;
  }
  async disconnect(hostId: string, code: number, reason: string): Promise<void> {
    this.disconnectLocal(hostId, code, reason);
  }
  /** Close the host's connection if it is held here; whether it was. */
  disconnectLocal(hostId: string, code: number, reason: string): boolean {
    const conn = this.#hosts.get(hostId);
    if (!conn) return false;
    this.#hosts.delete(hostId);
    conn.close(code, reason);
    return true;
  }
  async isConnected(hostId: string): Promise<boolean> {
    return this.has(hostId);
  }
  /** Whether this process holds the host's connection. */
  has(hostId: string): boolean {
    return this.#hosts.has(hostId);
  }
  /** Host ids whose connections this process holds. */
  hostIds(): string[] {
    return [...this.#hosts.keys()];
  }
  /** Host ids held here whose connection may need a kick whatever the database says (HostConnection.unsettled). */
  unsettledHostIds(): string[] {
    const out: string[] = [];
    for (const [id, conn] of this.#hosts) if (conn.unsettled !== false) out.push(id);
    return out;
  }
  rpc(hostId: string, request: RpcRequest): Promise<RpcResult> {
    const conn = this.#hosts.get(hostId);
    if (!conn) return Promise.reject(hostOffline());
    return conn.rpc(request);
  }
  /** Connections held by this process. */
  get size(): number {
    return this.#hosts.size;
  }
  /** Close every connection (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const [id, conn] of [...this.#hosts]) {
      this.#hosts.delete(id);
      conn.close(code, reason);
    }
  }
}
