import { decodeAgentFrame, encodeFrame, PROTOCOL_VERSION, type RpcResult } from "@supamanager/shared";
import { and, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import { agentRpcs, hosts } from "../db/schema.js";
import type { AppDeps } from "../deps.js";
import { ApiError } from "../errors.js";
import { bearerToken } from "../middleware/auth.js";
import {
  type AgentConnections,
  APIGW_MAX_FRAME_BYTES,
  APIGW_MAX_MESSAGE_BYTES,
  NO_REGISTRY,
  PostingTransport,
} from "../services/fleet/apigw-hub.js";
import { authenticateHost } from "../services/fleet/authenticate.js";
import { storeRpcAnswer } from "../services/fleet/rpc-mailbox.js";
import { HostSession } from "../services/fleet/session.js";

/**
 * The agent channel on AWS Lambda: the three routes of an API Gateway WebSocket API (ADR 0017).
 * API Gateway holds the agent's socket; each event is one invocation:
 *   $connect     authenticate the host credential (Authorization header) and store the connection id
 *   $default     one frame from the agent, handled by a HostSession that lives for this invocation
 *   $disconnect  forget the connection id and fail RPCs still waiting on it
 */

/** The part of an API Gateway WebSocket (Lambda proxy) event this handler reads. */
export const WebSocketEvent = z.object({
  requestContext: z.object({
    routeKey: z.string().max(128),
    eventType: z.enum(["CONNECT", "MESSAGE", "DISCONNECT"]),
    connectionId: z.string().min(1).max(128),
    requestId: z.string().max(128).optional(),
    identity: z.object({ sourceIp: z.string().max(64).optional() }).optional(),
    disconnectStatusCode: z.number().int().optional(),
    disconnectReason: z.string().max(1024).optional(),
  }),
  headers: z.record(z.string(), z.string()).nullish(),
  body: z.string().nullish(),
  isBase64Encoded: z.boolean().optional(),
});
export type WebSocketEvent = z.infer<typeof WebSocketEvent>;

/** What the integration answers. Only $connect's status reaches the client (the upgrade response). */
export interface WebSocketResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}

const ok: WebSocketResult = { statusCode: 200 };

function jsonResult(status: number, body: { message: string; code: string }): WebSocketResult {
  return { statusCode: status, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

function header(event: WebSocketEvent, name: string): string | undefined {
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** The close code API Gateway uses for a frame or message over its size limits. */
const MESSAGE_TOO_BIG = 1009;

export class LambdaAgentChannel {
  constructor(
    private readonly deps: AppDeps,
    private readonly connections: AgentConnections,
  ) {}

  async handle(input: unknown): Promise<WebSocketResult> {
    const parsed = WebSocketEvent.safeParse(input);
    if (!parsed.success) {
      this.deps.logger.warn("not an API Gateway WebSocket event", {
        issues: parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`),
      });
      return jsonResult(400, { message: "Not an API Gateway WebSocket event", code: "bad_request" });
    }
    const event = parsed.data;
    switch (event.requestContext.eventType) {
      case "CONNECT":
        return this.connect(event);
      case "MESSAGE":
        return this.message(event);
      case "DISCONNECT":
        return this.disconnect(event);
    }
  }

  /** $connect: refuse (401) an unknown or revoked credential before the socket opens. */
  async connect(event: WebSocketEvent): Promise<WebSocketResult> {
    const { connectionId, requestId, identity } = event.requestContext;
    const meta = {
      requestId: requestId ?? connectionId,
      ip: identity?.sourceIp,
      userAgent: header(event, "user-agent")?.slice(0, 512),
    };
    let host: { id: string };
    try {
      host = await authenticateHost(
        { db: this.deps.database.db, deps: this.deps, meta },
        bearerToken(header(event, "authorization")),
      );
    } catch (err) {
      if (err instanceof ApiError) {
        this.deps.logger.warn("agent connection refused", { ip: meta.ip, status: err.status });
        return jsonResult(err.status, { message: err.message, code: err.code });
      }
      throw err;
    }
    const [before] = await this.deps.database.db
      .select({ connectionId: hosts.connectionId })
      .from(hosts)
      .where(eq(hosts.id, host.id))
      .limit(1);
    await this.deps.database.db.update(hosts).set({ connectionId }).where(eq(hosts.id, host.id));
    // A newer connection replaces the older one, as on Node (CLOSE.replaced).
    if (before?.connectionId && before.connectionId !== connectionId) {
      await this.connections.delete(before.connectionId).catch((err: unknown) => {
        this.deps.logger.warn("closing the replaced agent connection failed", { hostId: host.id, err });
      });
    }
    this.deps.logger.info("agent connected", { hostId: host.id, connectionId });
    return ok;
  }

  /** $default: one frame from the agent. */
  async message(event: WebSocketEvent): Promise<WebSocketResult> {
    const { connectionId } = event.requestContext;
    const [host] = await this.deps.database.db
      .select({ id: hosts.id })
      .from(hosts)
      .where(and(eq(hosts.connectionId, connectionId), isNull(hosts.removedAt)))
      .limit(1);
    if (!host) {
      // Replaced by a newer connection, or the host was removed: this socket has no host any more.
      this.deps.logger.warn("frame on a connection that belongs to no host", { connectionId });
      await this.#refuse(connectionId);
      return ok;
    }
    const body = event.body ?? "";
    const raw = event.isBase64Encoded ? new Uint8Array(Buffer.from(body, "base64")) : body;
    const decoded = decodeAgentFrame(raw);
    if (decoded.ok && decoded.frame.type === "rpc_result") {
      await this.#answer(host.id, decoded.frame);
      return ok;
    }
    const log = this.deps.logger.child({ hostId: host.id });
    const transport = new PostingTransport(this.deps, this.connections, host.id, connectionId, log);
    // A hello starts the conversation afresh (welcome, inventory, applies); any other frame
    // continues one whose hello an earlier invocation handled.
    const session =
      decoded.ok && decoded.frame.type === "hello"
        ? new HostSession(this.deps, host.id, transport, NO_REGISTRY)
        : new HostSession(this.deps, host.id, transport, NO_REGISTRY, { resumeReady: true });
    await session.receive(raw);
    await transport.flush();
    return ok;
  }

  /** $disconnect: forget the connection; RPCs waiting on it fail now instead of at their timeout. */
  async disconnect(event: WebSocketEvent): Promise<WebSocketResult> {
    const { connectionId, disconnectStatusCode, disconnectReason } = event.requestContext;
    const [host] = await this.deps.database.db
      .update(hosts)
      .set({ connectionId: null })
      .where(eq(hosts.connectionId, connectionId))
      .returning({ id: hosts.id });
    this.deps.logger.info("agent disconnected", {
      hostId: host?.id,
      connectionId,
      code: disconnectStatusCode,
      reason: disconnectReason?.slice(0, 200),
    });
    if (host) await this.#failWaiting(host.id, disconnectStatusCode);
    return ok;
  }

  async #answer(hostId: string, frame: RpcResult): Promise<void> {
    const took = await storeRpcAnswer(this.deps.database.db, hostId, frame, new Date(this.deps.clock.now()));
    if (!took) this.deps.logger.debug("rpc result with no waiter (timed out or unknown)", { hostId, id: frame.id });
  }

  /** Answer every RPC still waiting on the host with why its connection ended. */
  async #failWaiting(hostId: string, code: number | undefined): Promise<void> {
    const waiting = await this.deps.database.db
      .select({ id: agentRpcs.id })
      .from(agentRpcs)
      .where(and(eq(agentRpcs.hostId, hostId), isNull(agentRpcs.answeredAt)));
    const failure =
      code === MESSAGE_TOO_BIG
        ? {
            code: "too_large",
            error: `result exceeded what API Gateway carries on the agent's WebSocket (${APIGW_MAX_FRAME_BYTES / 1024} KiB per frame, ${APIGW_MAX_MESSAGE_BYTES / 1024} KiB per message); the agent reconnects`,
          }
        : { code: "unreachable", error: "the host agent disconnected before answering" };
    const now = new Date(this.deps.clock.now());
    for (const { id } of waiting) {
      await storeRpcAnswer(
        this.deps.database.db,
        hostId,
        { v: PROTOCOL_VERSION, type: "rpc_result", id, ...failure },
        now,
      );
    }
  }

  /** Tell the agent why, then close the connection. */
  async #refuse(connectionId: string): Promise<void> {
    const frame = encodeFrame({
      v: PROTOCOL_VERSION,
      type: "error",
      code: "unauthorized",
      message: "this connection no longer belongs to a host (replaced or removed); reconnect",
    });
    try {
      await this.connections.post(connectionId, frame);
      await this.connections.delete(connectionId);
    } catch (err) {
      this.deps.logger.warn("closing an unknown agent connection failed", { connectionId, err });
    }
  }
}
