/**
 * Exponential backoff with "full jitter" (a uniformly random delay in [0, min(cap, base·factor^n)]),
 * so a thousand agents dropped by one control-plane deploy don't all come back in the same second.
 */
export interface BackoffOptions {
  baseMs: number;
  factor: number;
  capMs: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly opts: BackoffOptions) {
    if (opts.baseMs <= 0 || opts.capMs < opts.baseMs || opts.factor < 1)
      throw new RangeError("invalid backoff options");
    this.random = opts.random ?? Math.random;
  }

  /** The ceiling of the next delay, before jitter. */
  ceiling(): number {
    return Math.min(this.opts.capMs, this.opts.baseMs * this.opts.factor ** this.attempt);
  }

  /** The delay before the next attempt; each call counts as one more failure. */
  next(): number {
    const ceiling = this.ceiling();
    // Stop growing the exponent once capped so it can't overflow to Infinity after many failures.
    if (ceiling < this.opts.capMs) this.attempt += 1;
    return Math.floor(this.random() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
