import { type RpcResult, RpcResult as RpcResultSchema } from "@supamanager/shared";
import { and, eq, isNull, lt } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { agentRpcs } from "../../db/schema.js";
import type { RpcRequest } from "./hub.js";

/**
 * A Postgres rendezvous for RPCs whose request and answer are handled by different processes
 * (ADR 0014): Node replicas (the replica holding the socket forwards a parked request) and
 * Lambda (the invocation that receives the agent's `rpc_result` is not the one waiting for it).
 * The waiter polls its row (cheap primary-key reads) and may be woken earlier by a notification.
 */

export async function parkRpc(db: Executor, id: string, hostId: string, request: RpcRequest | null): Promise<void> {
  await db.insert(agentRpcs).values({ id, hostId, request });
}

/**
 * Take a parked request for `hostId` (the replica holding its socket, ADR 0014). Only one taker
 * wins; the request is returned to it, null to everyone else (claimed, answered, withdrawn, or
 * a request of another host).
 */
export async function claimRpc(db: Executor, id: string, hostId: string, now: Date): Promise<RpcRequest | null> {
  const [row] = await db
    .update(agentRpcs)
    .set({ claimedAt: now })
    .where(
      and(
        eq(agentRpcs.id, id),
        eq(agentRpcs.hostId, hostId),
        isNull(agentRpcs.claimedAt),
        isNull(agentRpcs.answeredAt),
      ),
    )
    .returning({ request: agentRpcs.request });
  return (row?.request as RpcRequest | null | undefined) ?? null;
}

/** Whether the row was claimed (or already answered); false when it is gone. */
export async function rpcClaimed(db: Executor, id: string): Promise<boolean> {
  const [row] = await db
    .select({ claimedAt: agentRpcs.claimedAt, answeredAt: agentRpcs.answeredAt })
    .from(agentRpcs)
    .where(eq(agentRpcs.id, id))
    .limit(1);
  return row !== undefined && (row.claimedAt !== null || row.answeredAt !== null);
}

/**
 * Delete the row if nobody claimed it yet; whether it was deleted. Atomic against claimRpc: after
 * `true` no holder can take the request, after `false` one already has.
 */
export async function withdrawUnclaimedRpc(db: Executor, id: string): Promise<boolean> {
  const rows = await db
    .delete(agentRpcs)
    .where(and(eq(agentRpcs.id, id), isNull(agentRpcs.claimedAt), isNull(agentRpcs.answeredAt)))
    .returning({ id: agentRpcs.id });
  return rows.length > 0;
}

/**
 * Store an agent's answer. Only an unanswered row of the SAME host takes it, so one host cannot
 * answer another host's request. Returns whether a waiter's row took it.
 */
export async function storeRpcAnswer(db: Executor, hostId: string, result: RpcResult, now: Date): Promise<boolean> {
  const rows = await db
    .update(agentRpcs)
    .set({ result, answeredAt: now })
    .where(and(eq(agentRpcs.id, result.id), eq(agentRpcs.hostId, hostId), isNull(agentRpcs.answeredAt)))
    .returning({ id: agentRpcs.id });
  return rows.length > 0;
}

export interface WaitOptions {
  timeoutMs: number;
  /** Poll interval; a `wake` notification ends a sleep early. */
  pollMs?: number;
  /** Subscribe to "some answer may have arrived"; returns an unsubscribe function. */
  wake?: (notify: () => void) => () => void;
  sleep?: (ms: number) => Promise<void>;
}

/** Wait for the row's answer; undefined on timeout. Always deletes the row. */
export async function awaitRpcAnswer(db: Executor, id: string, opts: WaitOptions): Promise<RpcResult | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 100;
  let wakeUp: (() => void) | undefined;
  const unsubscribe = opts.wake?.(() => wakeUp?.());
  try {
    for (;;) {
      const [row] = await db.select({ result: agentRpcs.result }).from(agentRpcs).where(eq(agentRpcs.id, id)).limit(1);
      if (row?.result) {
        const parsed = RpcResultSchema.safeParse(row.result);
        return parsed.success ? parsed.data : undefined;
      }
      const left = deadline - Date.now();
      if (left <= 0 || !row) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(pollMs, left));
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = undefined;
    }
  } finally {
    unsubscribe?.();
    await db.delete(agentRpcs).where(eq(agentRpcs.id, id));
  }
}

/** Remove rows older than `before` (waiters that died without cleaning up). */
export async function sweepRpcs(db: Executor, before: Date): Promise<void> {
  await db.delete(agentRpcs).where(lt(agentRpcs.createdAt, before));
}
