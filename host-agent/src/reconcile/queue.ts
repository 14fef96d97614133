/**
 * Runs tasks one at a time per key (one project's applies never overlap) and at most `limit` at a
 * time overall (two projects may converge concurrently without starving the host).
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly limit: number) {
    if (limit < 1) throw new RangeError("limit must be at least 1");
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.chain(key, () => this.withSlot(task));
  }

  /**
   * Like run, in the key's order, but outside the overall limit: long work that must exclude the
   * key's other tasks (an upgrade) without taking a slot other projects need.
   */
  exclusive<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.chain(key, task);
  }

  private chain<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    this.inflight.add(tail);
    void tail.then(() => {
      this.inflight.delete(tail);
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Number of tasks queued or running. */
  get size(): number {
    return this.inflight.size;
  }

  /** Resolves when everything queued so far has finished. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  private async withSlot<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.running += 1;
    try {
      return await task();
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }
}
