import type { Actor, AppDeps } from "../../deps.js";

/** At most this many sessions are remembered per process (the oldest entry goes first). */
export const SESSION_CACHE_MAX = 10_000;

interface Entry {
  actor: Actor;
  until: number;
}

/**
 * Dashboard sessions this process recently found live, so an authenticated request does not
 * spend a database round trip re-reading the same session row (ADR 0033). An entry lives
 * SUPAMANAGER_SESSION_CHECK_SECONDS (deps.clock), which bounds how long a session revoked by
 * another process keeps working here; a revocation made by this process evicts at once. Only
 * live sessions are remembered: an unknown or revoked one is read from the database every time.
 */
export class SessionCache {
  readonly #entries = new Map<string, Entry>();
  /**
   * Sessions this process revoked within the last TTL: a request that read one as live just
   * before the revocation committed must not put it back.
   */
  readonly #revoked = new Map<string, number>();

  constructor(private readonly deps: Pick<AppDeps, "clock" | "config">) {}

  get ttlMs(): number {
    return this.deps.config.sessionCheckSeconds * 1000;
  }

  /** The actor of a session found live within the last TTL, for the user the token names. */
  get(sessionId: string, userId: string): Actor | undefined {
    const entry = this.#entries.get(sessionId);
    if (!entry) return undefined;
    if (entry.until <= this.deps.clock.now() || entry.actor.userId !== userId) {
      this.#entries.delete(sessionId);
      return undefined;
    }
    return entry.actor;
  }

  /** Remember a session just read live from the database. */
  remember(actor: Actor): void {
    const ttl = this.ttlMs;
    if (ttl <= 0) return;
    const now = this.deps.clock.now();
    const revokedUntil = this.#revoked.get(actor.sessionId);
    if (revokedUntil !== undefined) {
      if (revokedUntil > now) return;
      this.#revoked.delete(actor.sessionId);
    }
    this.#entries.delete(actor.sessionId);
    if (this.#entries.size >= SESSION_CACHE_MAX) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(actor.sessionId, { actor, until: now + ttl });
  }

  /** Forget sessions this process just revoked, so they stop working here at once. */
  forget(sessionIds: Iterable<string>): void {
    const until = this.deps.clock.now() + this.ttlMs;
    for (const id of sessionIds) {
      this.#entries.delete(id);
      if (this.ttlMs <= 0) continue;
      if (this.#revoked.size >= SESSION_CACHE_MAX) {
        const oldest = this.#revoked.keys().next().value;
        if (oldest !== undefined) this.#revoked.delete(oldest);
      }
      this.#revoked.set(id, until);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}

const caches = new WeakMap<object, SessionCache>();

/** The session cache of the app built with `deps` (one per app instance, made on first use). */
export function sessionCache(deps: Pick<AppDeps, "clock" | "config">): SessionCache {
  let cache = caches.get(deps);
  if (!cache) {
    cache = new SessionCache(deps);
    caches.set(deps, cache);
  }
  return cache;
}
