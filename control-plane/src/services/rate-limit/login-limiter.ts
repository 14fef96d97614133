import { sql } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { rateLimits } from "../../db/schema.js";

export interface LimitDecision {
  allowed: boolean;
  /** Seconds until the window resets (for Retry-After). */
  retryAfterSeconds: number;
}

/**
 * Fixed-window counter kept in Postgres, so every replica (and a Worker) shares it.
 * One upsert per hit: a new window starts when the old one has ended.
 */
export async function hit(
  db: Executor,
  key: string,
  limit: number,
  windowSeconds: number,
  nowMs: number,
): Promise<LimitDecision> {
  const now = new Date(nowMs);
  const windowStartCutoff = new Date(nowMs - windowSeconds * 1000);
  const [row] = await db
    .insert(rateLimits)
    .values({ key, windowStart: now, count: 1 })
    .onConflictDoUpdate({
      target: rateLimits.key,
      set: {
        count: sql`case when ${rateLimits.windowStart} <= ${windowStartCutoff.toISOString()}::timestamptz then 1 else ${rateLimits.count} + 1 end`,
        windowStart: sql`case when ${rateLimits.windowStart} <= ${windowStartCutoff.toISOString()}::timestamptz then ${now.toISOString()}::timestamptz else ${rateLimits.windowStart} end`,
      },
    })
    .returning({ count: rateLimits.count, windowStart: rateLimits.windowStart });
  if (!row) throw new Error("rate limit upsert returned no row");
  const resetMs = row.windowStart.getTime() + windowSeconds * 1000;
  return {
    allowed: row.count <= limit,
    retryAfterSeconds: Math.max(1, Math.ceil((resetMs - nowMs) / 1000)),
  };
}

/** Peek without counting (used to refuse before spending a password hash). */
export async function peek(
  db: Executor,
  key: string,
  limit: number,
  windowSeconds: number,
  nowMs: number,
): Promise<LimitDecision> {
  const rows = await db.select().from(rateLimits).where(sql`${rateLimits.key} = ${key}`).limit(1);
  const row = rows[0];
  if (!row) return { allowed: true, retryAfterSeconds: 0 };
  const resetMs = row.windowStart.getTime() + windowSeconds * 1000;
  if (resetMs <= nowMs) return { allowed: true, retryAfterSeconds: 0 };
  return { allowed: row.count < limit, retryAfterSeconds: Math.max(1, Math.ceil((resetMs - nowMs) / 1000)) };
}

/** Forget a key (a successful login clears the per-email failure counter). */
export async function reset(db: Executor, key: string): Promise<void> {
  await db.delete(rateLimits).where(sql`${rateLimits.key} = ${key}`);
}
