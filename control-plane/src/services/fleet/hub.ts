import type { Rpc, RpcResult } from "@supamanager/shared";
import { ApiError } from "../../errors.js";

/**
 * The hub maps connected host ids to their live sessions in THIS process, so an API request that
 * changes desired state can `kick` the host and the apply goes out at once. It holds nothing
 * durable: when the host is not connected here the work simply waits in Postgres and is sent
 * on the next (re)connect. (Several Node replicas would forward kicks through LISTEN/NOTIFY; a
 * Workers deployment has one Durable Object per host. Both implement this interface.)
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
}

/** An `rpc` frame without the envelope (`v`, `type`) and id, which the connection assigns. */
export type RpcRequest = Omit<Rpc, "v" | "type" | "id">;

/** The answer when the host has no live connection in this process (see the note on Hub). */
export const hostOffline = () =>
  new ApiError("unavailable", "The project's host is offline: its agent is not connected, try again later");

export interface Hub {
  /** A newer connection for the same host replaces (and closes) the older one. */
  register(hostId: string, conn: HostConnection): void;
  /** Forget `conn` if it is still the host's current connection. */
  unregister(hostId: string, conn: HostConnection): void;
  kick(hostId: string): void;
  disconnect(hostId: string, code: number, reason: string): void;
  isConnected(hostId: string): boolean;
  /**
   * Forward a request to a service of a project on the host and wait for the answer. The agent
   * must be connected to THIS process (several replicas would need to route the request to the
   * process holding the socket — not done yet); otherwise it rejects with 503.
   */
  rpc(hostId: string, request: RpcRequest): Promise<RpcResult>;
  readonly size: number;
}

/** Close codes the control plane uses. */
export const CLOSE = {
  replaced: 4000,
  removed: 4001,
  shuttingDown: 4002,
} as const;

export class LocalHub implements Hub {
  readonly #hosts = new Map<string, HostConnection>();

  register(hostId: string, conn: HostConnection): void {
    const old = this.#hosts.get(hostId);
    this.#hosts.set(hostId, conn);
    if (old && old !== conn) old.close(CLOSE.replaced, "replaced by a newer connection");
  }
  unregister(hostId: string, conn: HostConnection): void {
    if (this.#hosts.get(hostId) === conn) this.#hosts.delete(hostId);
  }
  kick(hostId: string): void {
    this.#hosts.get(hostId)?.kick();
  }
  disconnect(hostId: string, code: number, reason: string): void {
    const conn = this.#hosts.get(hostId);
    if (!conn) return;
    this.#hosts.delete(hostId);
    conn.close(code, reason);
  }
  isConnected(hostId: string): boolean {
    return this.#hosts.has(hostId);
  }
  rpc(hostId: string, request: RpcRequest): Promise<RpcResult> {
    const conn = this.#hosts.get(hostId);
    if (!conn) return Promise.reject(hostOffline());
    return conn.rpc(request);
  }
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
