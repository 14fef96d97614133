import type { z } from "zod";
import { fastHeartbeat } from "./fast-heartbeat.js";
import {
  type AgentFrame,
  AgentFrame as AgentFrameSchema,
  type ErrorFrame,
  MAX_FRAME_BYTES,
  MIN_AGENT_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  type ServerFrame,
  ServerFrame as ServerFrameSchema,
} from "./frames.js";

export type DecodeResult<T> = { ok: true; frame: T } | { ok: false; error: ErrorFrame };

const encoder = new TextEncoder();

function fail(code: ErrorFrame["code"], message: string): { ok: false; error: ErrorFrame } {
  return { ok: false, error: { v: PROTOCOL_VERSION, type: "error", code, message } };
}

/**
 * Parse and validate one frame. Never throws: anything wrong becomes an `error` frame to send
 * back, so a bad peer can't crash the reader or disturb other connections.
 */
/** The protocol versions a reader accepts, both ends included. */
export interface AcceptedVersions {
  min: number;
  max: number;
}

const decoder = new TextDecoder();

/**
 * The UTF-8 size of a frame, counted only when it could exceed the limit (a UTF-16 code unit takes
 * at most 3 bytes): encoding every heartbeat just to measure it was a copy per frame. 0 otherwise.
 */
function utf8SizeIfLarge(text: string): number {
  return text.length * 3 <= MAX_FRAME_BYTES ? 0 : encoder.encode(text).length;
}

function decode<T>(
  raw: string | Uint8Array,
  schema: z.ZodType<T>,
  accepted: AcceptedVersions,
  fast?: (value: Record<string, unknown>) => T | undefined,
): DecodeResult<T> {
  const size = typeof raw === "string" ? utf8SizeIfLarge(raw) : raw.length;
  if (size > MAX_FRAME_BYTES) return fail("too_large", `frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === "string" ? raw : decoder.decode(raw));
  } catch {
    return fail("bad_frame", "frame is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail("bad_frame", "frame must be a JSON object");
  }
  const version = (value as { v?: unknown }).v;
  if (typeof version !== "number" || !Number.isInteger(version) || version < accepted.min || version > accepted.max) {
    return fail("unsupported_version", versionMessage(version, accepted));
  }
  // A fast path may accept what the schema accepts, with the same result; anything else is zod's.
  const quick = fast?.(value as Record<string, unknown>);
  if (quick !== undefined) return { ok: true, frame: quick };
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const type = (value as { type?: unknown }).type;
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join(".") || "(frame)"}: ${i.message}`)
      .join("; ");
    return fail("bad_frame", `invalid ${typeof type === "string" ? type.slice(0, 32) : "unknown"} frame: ${issues}`);
  }
  return { ok: true, frame: parsed.data };
}

/** Says which side has to be upgraded, so the operator knows what to do next. */
function versionMessage(version: unknown, accepted: AcceptedVersions): string {
  const range = accepted.min === accepted.max ? `${accepted.max}` : `${accepted.min} to ${accepted.max}`;
  if (typeof version === "number" && Number.isInteger(version) && version < accepted.min) {
    return `protocol version ${version} is too old: this peer accepts ${range}; upgrade the older peer (an agent: install a newer supamanager-agent)`;
  }
  if (typeof version === "number" && Number.isInteger(version) && version > accepted.max) {
    return `protocol version ${version} is newer than this peer's ${range}; upgrade this peer (the control plane first, then the agents)`;
  }
  return `protocol version ${String(version)} is not supported; this peer accepts ${range}`;
}

/** The agent versions a control plane serves: its own protocol and the one before (ADR 0040). */
export const AGENT_PROTOCOLS: AcceptedVersions = { min: MIN_AGENT_PROTOCOL_VERSION, max: PROTOCOL_VERSION };

/**
 * Control plane side: a frame received from an agent, of any protocol version in `accepted`
 * (default: this one and the one before).
 */
export const decodeAgentFrame = (
  raw: string | Uint8Array,
  accepted: AcceptedVersions = AGENT_PROTOCOLS,
): DecodeResult<AgentFrame> => decode(raw, AgentFrameSchema, accepted, fastHeartbeat);

/**
 * Agent side: a frame received from the control plane, which answers in the agent's own version.
 */
export const decodeServerFrame = (raw: string | Uint8Array): DecodeResult<ServerFrame> =>
  decode(raw, ServerFrameSchema, { min: PROTOCOL_VERSION, max: PROTOCOL_VERSION });

/** Serialise a frame, validating it first so neither side ever sends what the other would refuse. */
export function encodeFrame(frame: AgentFrame | ServerFrame): string {
  const schema =
    frame.type === "error" ? AgentFrameSchema : isServerType(frame.type) ? ServerFrameSchema : AgentFrameSchema;
  const parsed = schema.parse(frame);
  const text = JSON.stringify(parsed);
  if (encoder.encode(text).length > MAX_FRAME_BYTES) throw new RangeError(`frame exceeds ${MAX_FRAME_BYTES} bytes`);
  return text;
}

function isServerType(type: string): boolean {
  return type === "welcome" || type === "apply" || type === "job" || type === "rpc";
}
