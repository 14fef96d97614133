/**
 * What one host's agent frames may cost the control plane (issue 14, item 11): a token bucket per
 * host. Every frame the agent sends unasked takes one token; the bucket holds AGENT_FRAME_BURST
 * tokens and refills at AGENT_FRAME_RATE per second. A connection that finds the bucket empty is
 * closed with CLOSE_RATE_LIMITED (hub.ts). Answers to the control plane's own requests (an
 * `rpc_result` for a waiting RPC) take no token: how many of those arrive is ours to decide.
 *
 * The numbers: in steady state an agent sends one heartbeat per heartbeat interval (15 s by
 * default) and one `health` per running project every 30 s, plus one `applied` and a few `health`
 * per project after a change; a reconnect resends health for every project at once. 50 frames/s
 * covers 1,200 running projects on one host in steady state (40 health frames/s), the burst of
 * 1,000 a reconnect of a host with 500 projects sending `applied` and `health` for each at once.
 * A flood (the review sent 30,000 heartbeats) is cut after at most BURST + RATE × seconds frames.
 */
export const AGENT_FRAME_BURST = 1_000;
export const AGENT_FRAME_RATE = 50;

export class FrameBudget {
  #tokens: number;
  #at: number;

  constructor(
    readonly burst: number,
    readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.#tokens = burst;
    this.#at = now();
  }

  /** Take one token; false when the bucket is empty (the frame is over the limit). */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Tokens left now. */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  #refill(): void {
    const now = this.now();
    // A clock that went backwards refills nothing (and does not drain either).
    const elapsed = Math.max(0, now - this.#at);
    this.#at = Math.max(this.#at, now);
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.perSecond) / 1000);
  }
}

/**
 * Budgets by host id, so that reconnecting does not refill a host's bucket: a host closed for a
 * flood finds its bucket as empty as it left it. A registry (LocalHub, the Workers host object)
 * keeps one; a full bucket is the same as none, so those are dropped when their host leaves.
 */
export class FrameBudgets {
  readonly #byHost = new Map<string, FrameBudget>();

  for(hostId: string, now: () => number): FrameBudget {
    let budget = this.#byHost.get(hostId);
    if (!budget) {
      budget = new FrameBudget(AGENT_FRAME_BURST, AGENT_FRAME_RATE, now);
      this.#byHost.set(hostId, budget);
    }
    return budget;
  }

  /** Forget the host's bucket if it is full again (nothing left to remember). */
  release(hostId: string): void {
    const budget = this.#byHost.get(hostId);
    if (budget && budget.tokens >= budget.burst) this.#byHost.delete(hostId);
  }

  get size(): number {
    return this.#byHost.size;
  }
}
