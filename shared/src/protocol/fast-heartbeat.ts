import type { Heartbeat, IngressStatus } from "./frames.js";

/**
 * A hand-written check of the `Heartbeat` schema, for the one frame every agent sends every
 * interval (ADR 0048): at 10,000 agents that is hundreds a second, and zod's general parser was
 * most of their decoding cost. It accepts a strict subset of what `Heartbeat.safeParse` accepts
 * and returns exactly what that would return (known keys only, in the schema's order,
 * `memReservedBytes` defaulted to 0); for anything it does not accept it returns `undefined` and
 * the caller parses with zod, which decides and words the error. So it can make a valid
 * heartbeat cheaper, never let an invalid one through: `protocol.test.ts` compares the two on
 * valid, malformed and hostile frames.
 */
export function fastHeartbeat(value: Record<string, unknown>): Heartbeat | undefined {
  // `v` was checked by the codec (a safe integer in the accepted range) before this is called.
  const v = value.v;
  if (value.type !== "heartbeat" || typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) return undefined;
  const capacity = fastCapacity(value.capacity);
  if (!capacity) return undefined;
  if (value.ingress === undefined) return { v, type: "heartbeat", capacity };
  const ingress = fastIngress(value.ingress);
  return ingress ? { v, type: "heartbeat", capacity, ingress } : undefined;
}

const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/** z.number().int(): zod 4 accepts safe integers only. */
const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x);

function fastCapacity(c: unknown): Heartbeat["capacity"] | undefined {
  if (!isPlainObject(c)) return undefined;
  const { cpus, memTotalBytes, memFreeBytes, load1 } = c;
  const memReservedBytes = c.memReservedBytes === undefined ? 0 : c.memReservedBytes;
  if (!isInt(cpus) || cpus <= 0) return undefined;
  if (!isInt(memTotalBytes) || memTotalBytes < 0) return undefined;
  if (!isInt(memFreeBytes) || memFreeBytes < 0) return undefined;
  if (!isInt(memReservedBytes) || memReservedBytes < 0) return undefined;
  // z.number() refuses NaN and ±Infinity (JSON.parse gives Infinity for 1e400).
  if (typeof load1 !== "number" || !Number.isFinite(load1) || load1 < 0) return undefined;
  return { cpus, memTotalBytes, memFreeBytes, memReservedBytes, load1 };
}

const INGRESS_STATES: ReadonlySet<unknown> = new Set(["off", "running", "error"]);

function fastIngress(i: unknown): IngressStatus | undefined {
  if (!isPlainObject(i)) return undefined;
  const { state, projects, port, message } = i;
  if (typeof state !== "string" || !INGRESS_STATES.has(state)) return undefined;
  if (!isInt(projects) || projects < 0) return undefined;
  const out: IngressStatus = { state: state as IngressStatus["state"], projects };
  if (port !== undefined) {
    if (!isInt(port) || port < 1 || port > 65535) return undefined;
    out.port = port;
  }
  if (message !== undefined) {
    if (typeof message !== "string" || message.length > 1000) return undefined;
    out.message = message;
  }
  return out;
}
