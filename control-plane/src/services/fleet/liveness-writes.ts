import type { Capacity } from "@supamanager/shared";
import { sql } from "drizzle-orm";
import type { AppDeps } from "../../deps.js";
import type { Logger } from "../../logger.js";

/** How long a heartbeat's row write may wait to share a statement with others' (ADR 0048). */
export const LIVENESS_FLUSH_MS = 1_000;
/** A batch is written at once when it reaches this many hosts. */
export const LIVENESS_MAX_BATCH = 2_000;

interface Pending {
  capacity: Capacity;
  at: number;
  waiters: { resolve: (live: boolean) => void; reject: (err: unknown) => void }[];
}

/**
 * Heartbeat writes of one process's connected hosts, gathered for up to LIVENESS_FLUSH_MS and
 * written as ONE statement (ADR 0048). With 10,000 agents the interval writes of ADR 0034 were
 * still about 330 single-row UPDATEs a second, each its own round trip through the pool; here
 * they are one UPDATE … FROM unnest(…) a second. The row only moves forward (a later write never
 * goes back in time), a removed host is not written, and each caller learns whether its host's
 * row was written (false: removed, so its connection is closed as before).
 *
 * The wait adds at most LIVENESS_FLUSH_MS (plus the statement) to the age of a live host's row,
 * inside the LIVENESS_MARGIN_SECONDS that livenessWriteMs keeps below the offline grace, so
 * no replica reads a live host offline. Node only: a Durable Object holds one host and the
 * Lambda path one frame, so they write directly (HostSession without a writer).
 */
export class LivenessWrites {
  #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly #log: Logger;

  constructor(
    private readonly deps: Pick<AppDeps, "database" | "logger">,
    private readonly opts: { flushMs?: number; maxBatch?: number } = {},
  ) {
    this.#log = deps.logger.child({ component: "liveness-writes" });
  }

  /**
   * Write the host's capacity and `last_seen_at = at` with the next batch. Resolves true once
   * written, false when the host is removed (or gone); rejects when the statement fails. A second
   * write of the same host before the flush replaces the first (both callers get its answer).
   */
  write(hostId: string, capacity: Capacity, at: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const entry = this.#pending.get(hostId);
      if (entry) {
        if (at >= entry.at) {
          entry.at = at;
          entry.capacity = capacity;
        }
        entry.waiters.push({ resolve, reject });
      } else {
        this.#pending.set(hostId, { capacity, at, waiters: [{ resolve, reject }] });
      }
      if (this.#pending.size >= (this.opts.maxBatch ?? LIVENESS_MAX_BATCH)) this.#flushSoon(0);
      else this.#flushSoon(this.opts.flushMs ?? LIVENESS_FLUSH_MS);
    });
  }

  /** Hosts waiting for the next statement. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Write everything pending now (shutdown, tests); resolves when written. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = new Map();
    // One statement at a time, so a host's later write never overtakes its earlier one.
    this.#flushing = this.#flushing.then(() => this.#write(batch));
    return this.#flushing;
  }

  #flushSoon(ms: number): void {
    if (ms === 0) {
      void this.flush();
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => void this.flush(), ms);
    this.#timer.unref?.();
  }

  async #write(batch: Map<string, Pending>): Promise<void> {
    if (batch.size === 0) return;
    const ids: string[] = [];
    const cpus: number[] = [];
    const total: string[] = [];
    const free: string[] = [];
    const reserved: string[] = [];
    const load: string[] = [];
    const at: string[] = [];
    for (const [id, p] of batch) {
      ids.push(id);
      cpus.push(p.capacity.cpus);
      total.push(String(p.capacity.memTotalBytes));
      free.push(String(p.capacity.memFreeBytes));
      reserved.push(String(p.capacity.memReservedBytes));
      load.push(String(p.capacity.load1));
      at.push(new Date(p.at).toISOString());
    }
    let written: Set<string>;
    try {
      // Each column is one array parameter: seven parameters however many hosts are written.
      const res = await this.deps.database.db.execute(sql`
        update hosts h set
          cpus = v.cpus, mem_total_bytes = v.total, mem_free_bytes = v.free,
          mem_reserved_bytes = v.reserved, load1 = v.load1,
          last_seen_at = greatest(coalesce(h.last_seen_at, v.at), v.at)
        from unnest(${sql.param(ids)}::text[], ${sql.param(cpus)}::int[], ${sql.param(total)}::bigint[],
                    ${sql.param(free)}::bigint[], ${sql.param(reserved)}::bigint[], ${sql.param(load)}::text[],
                    ${sql.param(at)}::timestamptz[])
             as v(id, cpus, total, free, reserved, load1, at)
        where h.id = v.id and h.removed_at is null
        returning h.id`);
      written = new Set(((res as { rows?: { id: string }[] }).rows ?? []).map((r) => r.id));
    } catch (err) {
      this.#log.warn("could not write a batch of heartbeats", { hosts: batch.size, err });
      for (const p of batch.values()) for (const w of p.waiters) w.reject(err);
      return;
    }
    for (const [id, p] of batch) for (const w of p.waiters) w.resolve(written.has(id));
  }
}
