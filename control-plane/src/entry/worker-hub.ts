import { ERROR_STATUS, type ErrorCode, RpcResult } from "@supamanager/shared";
import type { Context } from "hono";
import { z } from "zod";
import type { AppDeps, AppEnv } from "../deps.js";
import { ApiError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Hub, RpcRequest } from "../services/fleet/hub.js";
import type { DurableObjectNamespace, DurableObjectStub } from "./workers-types.js";

/**
 * The largest upstream answer the agent may put into an rpc_result on Workers: the runtime's
 * 1 MiB message limit (WORKERS_MAX_MESSAGE_BYTES in host-object.ts) minus room for the frame's
 * own fields and JSON escaping.
 */
export const WORKERS_MAX_RPC_RESULT_BYTES = 1024 * 1024 - 64 * 1024;
/**
 * The Workers hub: every host has ONE Durable Object (HostObject, `idFromName(hostId)`) that holds
 * its agent's socket, so "the process holding the connection" is always that object and the hub
 * only has to address it. The Worker talks to the object over its internal fetch interface
 * (paths under OBJECT_ORIGIN, never reachable from outside: only this Worker has the binding).
 */

/** Origin of the object's internal URLs (any origin works; this one says what it is). */
export const OBJECT_ORIGIN = "https://host-object.internal";
/** Header carrying the authenticated host id from the Worker to the object on connect. */
export const HOST_ID_HEADER = "x-supamanager-host-id";

export const DisconnectBody = z.object({
  code: z.number().int().min(4000).max(4999),
  reason: z.string().max(123),
});

/** How the object reports a failed rpc: the ApiError to rethrow on the Worker's side. */
export const ObjectError = z.object({ code: z.string(), message: z.string() });

const Connected = z.object({ connected: z.boolean() });

function stub(ns: DurableObjectNamespace, hostId: string): DurableObjectStub {
  return ns.get(ns.idFromName(hostId));
}

const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_STATUS, code);

/** Rebuild the object's ApiError on this side (unknown codes become a plain 503). */
async function objectFailure(res: Response): Promise<ApiError> {
  const parsed = ObjectError.safeParse(await res.json().catch(() => null));
  if (parsed.success && isErrorCode(parsed.data.code)) return new ApiError(parsed.data.code, parsed.data.message);
  return new ApiError("unavailable", "The project's host could not be reached; try again in a moment");
}

export class DurableObjectHub implements Hub {
  constructor(
    private readonly ns: DurableObjectNamespace,
    private readonly logger: Logger,
  ) {}

  /**
   * A kick or disconnect that fails is logged, not thrown: the change it follows is committed,
   * and nothing is lost (the work waits in Postgres for the next connect; a removed host's
   * credential is revoked and its session ends at its next heartbeat).
   */
  async #notify(hostId: string, path: string, body?: unknown): Promise<void> {
    try {
      const res = await stub(this.ns, hostId).fetch(`${OBJECT_ORIGIN}${path}`, {
        method: "POST",
        ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      });
      if (!res.ok) throw await objectFailure(res);
    } catch (err) {
      this.logger.warn("host object did not take the notification", { hostId, path, err });
    }
  }

  kick(hostId: string): Promise<void> {
    return this.#notify(hostId, "/kick");
  }

  disconnect(hostId: string, code: number, reason: string): Promise<void> {
    return this.#notify(hostId, "/disconnect", DisconnectBody.parse({ code, reason }));
  }

  async isConnected(hostId: string): Promise<boolean> {
    const res = await stub(this.ns, hostId).fetch(`${OBJECT_ORIGIN}/connected`);
    if (!res.ok) throw await objectFailure(res);
    return Connected.parse(await res.json()).connected;
  }

  async rpc(hostId: string, request: RpcRequest): Promise<RpcResult> {
    // The agent answers a result over this with `too_large` (a clear 413) instead of a frame
    // the Workers runtime would refuse by closing the socket.
    const maxResultBytes = Math.min(
      request.maxResultBytes ?? WORKERS_MAX_RPC_RESULT_BYTES,
      WORKERS_MAX_RPC_RESULT_BYTES,
    );
    const res = await stub(this.ns, hostId).fetch(`${OBJECT_ORIGIN}/rpc`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...request, maxResultBytes }),
    });
    if (!res.ok) throw await objectFailure(res);
    // The rpc_result frame the object received (validated there by the session, and here again).
    const result = RpcResult.safeParse(await res.json().catch(() => null));
    if (!result.success) throw new ApiError("bad_gateway", "The host object answered with an invalid rpc result");
    return result.data;
  }
}

/**
 * Workers' `deps.agentUpgrade`: the route has authenticated the host; the object of that host
 * accepts the socket (hibernation API) and its 101 response, carrying the client end, is what
 * the Worker returns.
 */
export function forwardAgentUpgrade(ns: DurableObjectNamespace): NonNullable<AppDeps["agentUpgrade"]> {
  return async (c: Context<AppEnv>, hostId: string) => {
    const res = await stub(ns, hostId).fetch(`${OBJECT_ORIGIN}/connect`, {
      headers: { upgrade: "websocket", [HOST_ID_HEADER]: hostId },
    });
    if (res.status !== 101) throw await objectFailure(res);
    c.get("logger").info("agent connecting through its host object", { hostId });
    return res;
  };
}
