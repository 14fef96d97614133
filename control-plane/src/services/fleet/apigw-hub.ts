import { randomUUID } from "node:crypto";
import {
  type ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { encodeFrame, PROTOCOL_VERSION, type RpcResult } from "@supamanager/shared";
import { and, eq, isNull } from "drizzle-orm";
import { agentRpcs, hosts } from "../../db/schema.js";
import type { AppDeps } from "../../deps.js";
import { ApiError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { type Hub, hostOffline, type RpcRequest, type SessionRegistry } from "./hub.js";
import { awaitRpcAnswer, parkRpc } from "./rpc-mailbox.js";
import { HostSession, type SessionTransport } from "./session.js";
import { isOnline } from "./status.js";

/**
 * The fleet hub when the control plane runs on AWS Lambda behind an API Gateway WebSocket API
 * (ADR 0017). No process holds a socket: API Gateway does, and any invocation can write to it
 * through the @connections management API given the connection id stored on the host
 * (hosts.connection_id, set by $connect). So a kick builds the host's pending applies and jobs
 * right here and posts them, and an RPC is posted here and answered through the Postgres
 * mailbox by whichever invocation receives the agent's `rpc_result`.
 */

/** API Gateway's largest WebSocket message (either direction); bigger posts fail, bigger inbound messages close the socket. */
export const APIGW_MAX_MESSAGE_BYTES = 128 * 1024;
/** API Gateway's largest WebSocket frame from a client; a bigger one closes the socket with 1009. */
export const APIGW_MAX_FRAME_BYTES = 32 * 1024;
/**
 * API Gateway ends an HTTP request whose integration has not answered within 29 s. An RPC made
 * while serving one must finish before that: its timeout is clamped to this, and the wait adds
 * RPC_GRACE_MS for the agent's own timeout answer, which still leaves a margin under 29 s.
 */
export const LAMBDA_RPC_MAX_TIMEOUT_MS = 24_000;
const RPC_GRACE_MS = 2_000;
/**
 * The largest `rpc_result` the agent may send back (Rpc.maxResultBytes): a bigger message would
 * make API Gateway close the agent's connection (1009), so the agent answers `too_large` instead.
 */
export const LAMBDA_MAX_RPC_RESULT_BYTES = APIGW_MAX_MESSAGE_BYTES - 1024;

const encoder = new TextEncoder();

/** The @connections management API as the hub needs it (a stand-in server in tests). */
export interface AgentConnections {
  /** Post one message; "gone" when API Gateway no longer knows the connection (410). */
  post(connectionId: string, text: string): Promise<"sent" | "gone">;
  /** Close the connection (a connection already gone is not an error). */
  delete(connectionId: string): Promise<void>;
}

export class MessageTooLargeError extends RangeError {
  override name = "MessageTooLargeError";
  constructor(readonly bytes: number) {
    super(`message of ${bytes} bytes exceeds API Gateway's WebSocket limit of ${APIGW_MAX_MESSAGE_BYTES} bytes`);
  }
}

function isGone(err: unknown): boolean {
  return (
    err instanceof GoneException ||
    (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode === 410
  );
}

/** AgentConnections over the AWS SDK's ApiGatewayManagementApiClient. */
export class ApiGatewayConnections implements AgentConnections {
  constructor(private readonly client: ApiGatewayManagementApiClient) {}

  async post(connectionId: string, text: string): Promise<"sent" | "gone"> {
    const data = encoder.encode(text);
    if (data.length > APIGW_MAX_MESSAGE_BYTES) throw new MessageTooLargeError(data.length);
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
      return "sent";
    } catch (err) {
      if (isGone(err)) return "gone";
      throw err;
    }
  }

  async delete(connectionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }
}

/** Forget a connection id, unless a newer connection of the host replaced it already. */
export async function clearConnection(deps: AppDeps, hostId: string, connectionId: string): Promise<boolean> {
  const rows = await deps.database.db
    .update(hosts)
    .set({ connectionId: null })
    .where(and(eq(hosts.id, hostId), eq(hosts.connectionId, connectionId)))
    .returning({ id: hosts.id });
  return rows.length > 0;
}

/**
 * A HostSession's socket on Lambda: every frame is a PostToConnection. Posts go out one after
 * another in send order (a welcome must reach the agent before the applies that follow it), and
 * `flush()` waits for them, because the invocation ends when its handler returns.
 */
export class PostingTransport implements SessionTransport {
  #chain: Promise<void> = Promise.resolve();
  #gone = false;

  constructor(
    private readonly deps: AppDeps,
    private readonly connections: AgentConnections,
    readonly hostId: string,
    readonly connectionId: string,
    private readonly log: Logger,
  ) {}

  /** Whether API Gateway said the connection is gone (410). */
  get gone(): boolean {
    return this.#gone;
  }

  send(text: string): void {
    // Refused at once, so HostSession logs which frame could not be sent (see docs/deploy-lambda.md).
    const bytes = encoder.encode(text).length;
    if (bytes > APIGW_MAX_MESSAGE_BYTES) throw new MessageTooLargeError(bytes);
    this.#then(async () => {
      if ((await this.connections.post(this.connectionId, text)) === "gone") await this.#markGone();
    });
  }

  close(_code: number, reason: string): void {
    // API Gateway closes with its own code; the reason goes to the log only.
    this.log.info("closing agent connection", { connectionId: this.connectionId, reason });
    this.#then(async () => {
      await this.connections.delete(this.connectionId);
      await clearConnection(this.deps, this.hostId, this.connectionId);
    });
  }

  /** Resolves when every post queued so far has been made (failures are logged, not thrown). */
  flush(): Promise<void> {
    return this.#chain;
  }

  #then(task: () => Promise<void>): void {
    this.#chain = this.#chain.then(async () => {
      if (this.#gone) return;
      try {
        await task();
      } catch (err) {
        this.log.warn("posting to the agent connection failed", { connectionId: this.connectionId, err });
      }
    });
  }

  async #markGone(): Promise<void> {
    this.#gone = true;
    this.log.info("agent connection is gone", { connectionId: this.connectionId });
    await clearConnection(this.deps, this.hostId, this.connectionId);
  }
}

/** Sessions on Lambda live for one invocation: nothing to register with. */
export const NO_REGISTRY: SessionRegistry = { register() {}, unregister() {} };

export interface ApiGatewayHubOptions {
  /** Poll interval of an RPC waiting for its answer in agent_rpcs. */
  rpcPollMs?: number;
}

export class ApiGatewayHub implements Hub {
  readonly #pollMs: number;

  constructor(
    /** The deps this hub is part of (they hold the hub, hence a getter). */
    private readonly deps: () => AppDeps,
    private readonly connections: AgentConnections,
    opts: ApiGatewayHubOptions = {},
  ) {
    this.#pollMs = opts.rpcPollMs ?? 50;
  }

  /** The host's live connection id, if it has one (and is not removed). */
  async connectionOf(hostId: string): Promise<{ connectionId: string; lastSeenAt: Date | null } | undefined> {
    const [row] = await this.deps()
      .database.db.select({ connectionId: hosts.connectionId, lastSeenAt: hosts.lastSeenAt })
      .from(hosts)
      .where(and(eq(hosts.id, hostId), isNull(hosts.removedAt)))
      .limit(1);
    return row?.connectionId ? { connectionId: row.connectionId, lastSeenAt: row.lastSeenAt } : undefined;
  }

  /**
   * A session for one invocation on the host's connection: `resumeReady` because the hello was
   * handled by an earlier invocation. It remembers nothing of earlier invocations, so a kick may
   * send an apply or a running job again (idempotent on the agent: applies by version, jobs by id).
   */
  session(hostId: string, connectionId: string): { session: HostSession; transport: PostingTransport } {
    const deps = this.deps();
    const log = deps.logger.child({ hostId });
    const transport = new PostingTransport(deps, this.connections, hostId, connectionId, log);
    const session = new HostSession(deps, hostId, transport, NO_REGISTRY, { resumeReady: true });
    return { session, transport };
  }

  async kick(hostId: string): Promise<void> {
    const conn = await this.connectionOf(hostId);
    if (!conn) return; // the work waits in Postgres for the next hello
    const { session, transport } = this.session(hostId, conn.connectionId);
    session.kick();
    await session.idle();
    await transport.flush();
  }

  async disconnect(hostId: string, _code: number, reason: string): Promise<void> {
    // Looked up whether or not the host is removed: removal is the usual reason to disconnect.
    const [row] = await this.deps()
      .database.db.select({ connectionId: hosts.connectionId })
      .from(hosts)
      .where(eq(hosts.id, hostId))
      .limit(1);
    if (!row?.connectionId) return;
    // API Gateway closes with its own code (1000/1001); the agent's next $connect is refused (401).
    this.deps().logger.info("disconnecting agent", { hostId, reason });
    await this.connections.delete(row.connectionId);
    await clearConnection(this.deps(), hostId, row.connectionId);
  }

  async isConnected(hostId: string): Promise<boolean> {
    const conn = await this.connectionOf(hostId);
    return conn !== undefined && isOnline(conn.lastSeenAt, this.deps());
  }

  async rpc(hostId: string, request: RpcRequest): Promise<RpcResult> {
    const deps = this.deps();
    const db = deps.database.db;
    const conn = await this.connectionOf(hostId);
    if (!conn) throw hostOffline();
    const timeoutMs = Math.min(request.timeoutMs, LAMBDA_RPC_MAX_TIMEOUT_MS);
    const id = `rpc_${randomUUID()}`;
    let text: string;
    try {
      text = encodeFrame({
        v: PROTOCOL_VERSION,
        type: "rpc",
        id,
        ...request,
        timeoutMs,
        maxResultBytes: Math.min(request.maxResultBytes ?? LAMBDA_MAX_RPC_RESULT_BYTES, LAMBDA_MAX_RPC_RESULT_BYTES),
      });
    } catch (err) {
      if (err instanceof RangeError) throw new ApiError("payload_too_large", "The request is too large");
      throw err;
    }
    const bytes = encoder.encode(text).length;
    if (bytes > APIGW_MAX_MESSAGE_BYTES) {
      throw new ApiError(
        "payload_too_large",
        `The request is too large to send to the host through API Gateway (${bytes} bytes; at most ${APIGW_MAX_MESSAGE_BYTES})`,
      );
    }
    await parkRpc(db, id, hostId, null);
    let posted: "sent" | "gone" | "failed";
    try {
      posted = await this.connections.post(conn.connectionId, text);
    } catch (err) {
      // Never log the request itself: its body and headers may hold SQL and secrets.
      deps.logger.warn("posting rpc to agent failed", { hostId, id, service: request.service, err });
      posted = "failed";
    }
    if (posted !== "sent") {
      await db.delete(agentRpcs).where(eq(agentRpcs.id, id));
      if (posted === "gone") {
        await clearConnection(deps, hostId, conn.connectionId);
        throw hostOffline();
      }
      throw new ApiError("unavailable", "The project's host could not be reached; try again in a moment");
    }
    const answer = await awaitRpcAnswer(db, id, { timeoutMs: timeoutMs + RPC_GRACE_MS, pollMs: this.#pollMs });
    if (!answer) {
      throw new ApiError(
        "gateway_timeout",
        `The project's ${request.service} did not answer within ${Math.round(timeoutMs / 1000)} s`,
      );
    }
    return answer;
  }
}
