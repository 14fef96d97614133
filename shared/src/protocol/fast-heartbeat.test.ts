import { describe, expect, it } from "vitest";
import { decodeAgentFrame } from "./codec.js";
import { fastHeartbeat } from "./fast-heartbeat.js";
import { Heartbeat, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./frames.js";

const capacity = { cpus: 8, memTotalBytes: 64 * 2 ** 30, memFreeBytes: 48 * 2 ** 30, memReservedBytes: 0, load1: 0.2 };
const beat = { v: PROTOCOL_VERSION, type: "heartbeat", capacity };

/** Frames as JSON text, exactly as they arrive on the socket. */
const valid: [string, string][] = [
  ["a plain heartbeat", JSON.stringify(beat)],
  [
    "no memReservedBytes (defaults to 0)",
    JSON.stringify({ ...beat, capacity: { ...capacity, memReservedBytes: undefined } }),
  ],
  ["unknown keys (stripped)", JSON.stringify({ ...beat, extra: 1, capacity: { ...capacity, gpu: 1 } })],
  ["an ingress state", JSON.stringify({ ...beat, ingress: { state: "running", projects: 3, port: 8443 } })],
  [
    "an ingress error",
    JSON.stringify({ ...beat, ingress: { state: "error", projects: 0, message: "x".repeat(1000) } }),
  ],
  ["ingress with unknown keys", JSON.stringify({ ...beat, ingress: { state: "off", projects: 0, secret: "s" } })],
  ["zero load, zero memory", JSON.stringify({ ...beat, capacity: { ...capacity, load1: 0, memFreeBytes: 0 } })],
  ["keys in another order", `{"capacity":${JSON.stringify(capacity)},"type":"heartbeat","v":${PROTOCOL_VERSION}}`],
];

const c = (patch: Record<string, unknown>) => JSON.stringify({ ...beat, capacity: { ...capacity, ...patch } });
const i = (ingress: unknown) => JSON.stringify({ ...beat, ingress });
const malformed: [string, string][] = [
  ["no capacity", JSON.stringify({ v: PROTOCOL_VERSION, type: "heartbeat" })],
  ["capacity null", JSON.stringify({ ...beat, capacity: null })],
  ["capacity an array", JSON.stringify({ ...beat, capacity: [1, 2] })],
  ["cpus 0", c({ cpus: 0 })],
  ["cpus fractional", c({ cpus: 1.5 })],
  ["cpus a string", c({ cpus: "8" })],
  ["cpus beyond a safe integer", c({ cpus: 2 ** 60 })],
  ["negative free memory", c({ memFreeBytes: -1 })],
  ["memTotalBytes missing", c({ memTotalBytes: undefined })],
  ["memReservedBytes null", c({ memReservedBytes: null })],
  ["load1 negative", c({ load1: -0.5 })],
  ["load1 a string", c({ load1: "0.1" })],
  ["load1 infinite (1e400)", c({ load1: 0.2 }).replace('"load1":0.2', '"load1":1e400')],
  ["ingress null", i(null)],
  ["ingress an unknown state", i({ state: "on", projects: 1 })],
  ["ingress negative projects", i({ state: "running", projects: -1 })],
  ["ingress port 0", i({ state: "running", projects: 1, port: 0 })],
  ["ingress port 65536", i({ state: "running", projects: 1, port: 65536 })],
  ["ingress message too long", i({ state: "error", projects: 0, message: "x".repeat(1001) })],
  ["ingress message a number", i({ state: "error", projects: 0, message: 5 })],
];

describe("fastHeartbeat (ADR 0048)", () => {
  it.each(valid)("accepts %s with exactly zod's result", (_name, raw) => {
    const value = JSON.parse(raw) as Record<string, unknown>;
    const fast = fastHeartbeat(value);
    const zod = Heartbeat.safeParse(value);
    expect(zod.success).toBe(true);
    expect(fast).toStrictEqual(zod.data);
    // Same keys in the same order, so the frame serialises identically.
    expect(JSON.stringify(fast)).toBe(JSON.stringify(zod.data));
    expect(decodeAgentFrame(raw)).toStrictEqual({ ok: true, frame: zod.data });
  });

  it.each(malformed)("leaves %s to zod, which refuses it with a bad_frame error", (_name, raw) => {
    const value = JSON.parse(raw) as Record<string, unknown>;
    expect(Heartbeat.safeParse(value).success).toBe(false);
    expect(fastHeartbeat(value)).toBeUndefined();
    const decoded = decodeAgentFrame(raw);
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.error.code).toBe("bad_frame");
    expect(!decoded.ok && decoded.error.message).toMatch(/^invalid heartbeat frame: /);
  });

  it("never accepts what zod refuses, over many mutated heartbeats", () => {
    // Deterministic mutations of every field to values of other types and edge values.
    const edge: unknown[] = [null, true, "1", [], {}, -1, 0, 1, 0.5, 2 ** 53, -0, 1e308, "", "running"];
    const paths: string[][] = [
      ["v"],
      ["type"],
      ["capacity"],
      ...Object.keys(capacity).map((k) => ["capacity", k]),
      ["ingress"],
      ["ingress", "state"],
      ["ingress", "projects"],
      ["ingress", "port"],
      ["ingress", "message"],
    ];
    let compared = 0;
    for (const path of paths) {
      for (const x of edge) {
        const frame = structuredClone({ ...beat, ingress: { state: "running", projects: 1 } }) as Record<
          string,
          unknown
        >;
        let at = frame;
        for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
        at[path[path.length - 1] as string] = x;
        const value = JSON.parse(JSON.stringify(frame)) as Record<string, unknown>;
        const zod = Heartbeat.safeParse(value);
        const fast = fastHeartbeat(value);
        if (fast !== undefined) expect(zod.success && zod.data, JSON.stringify(value)).toStrictEqual(fast);
        compared++;
      }
    }
    expect(compared).toBe(paths.length * edge.length);
  });

  it("still refuses an oversize heartbeat by its UTF-8 size", () => {
    // 2 MB of three-byte characters: 6 MB of UTF-8, over the limit though its length is not.
    const raw = JSON.stringify({
      ...beat,
      ingress: { state: "error", projects: 0, message: "€".repeat(2 * 1024 * 1024) },
    });
    const decoded = decodeAgentFrame(raw);
    expect(!decoded.ok && decoded.error.code).toBe("too_large");
    expect(raw.length).toBeLessThan(MAX_FRAME_BYTES);
  });
});
