import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.js";

describe("Backoff", () => {
  it("doubles the ceiling from the base up to the cap", () => {
    const b = new Backoff({ baseMs: 500, factor: 2, capMs: 30_000, random: () => 0.999999 });
    const delays = Array.from({ length: 10 }, () => b.next());
    expect(delays).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999, 29999]);
  });

  it("applies full jitter: the delay is random in [0, ceiling)", () => {
    const values = [0, 0.5, 0.25];
    const b = new Backoff({ baseMs: 1000, factor: 2, capMs: 60_000, random: () => values.shift() ?? 0 });
    expect(b.next()).toBe(0);
    expect(b.next()).toBe(1000); // 0.5 × 2000
    expect(b.next()).toBe(1000); // 0.25 × 4000
  });

  it("starts over after reset()", () => {
    const b = new Backoff({ baseMs: 100, factor: 2, capMs: 10_000, random: () => 0.5 });
    b.next();
    b.next();
    b.next();
    expect(b.ceiling()).toBe(800);
    b.reset();
    expect(b.ceiling()).toBe(100);
    expect(b.next()).toBe(50);
  });

  it("never overflows after very many failures", () => {
    const b = new Backoff({ baseMs: 500, factor: 2, capMs: 30_000, random: () => 0.5 });
    for (let i = 0; i < 5000; i++) b.next();
    expect(b.next()).toBe(15_000);
    expect(b.attempts).toBeLessThan(10);
  });

  it.each([
    { baseMs: 0, factor: 2, capMs: 10 },
    { baseMs: 100, factor: 2, capMs: 10 },
    { baseMs: 100, factor: 0.5, capMs: 1000 },
  ])("rejects nonsense options %o", (opts) => {
    expect(() => new Backoff(opts)).toThrow(RangeError);
  });
});
