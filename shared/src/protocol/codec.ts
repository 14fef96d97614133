import type { z } from "zod";
import {
  type AgentFrame,
  AgentFrame as AgentFrameSchema,
  type ErrorFrame,
  MAX_FRAME_BYTES,
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
function decode<T>(raw: string | Uint8Array, schema: z.ZodType<T>): DecodeResult<T> {
  const size = typeof raw === "string" ? encoder.encode(raw).length : raw.length;
  if (size > MAX_FRAME_BYTES) return fail("too_large", `frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
  } catch {
    return fail("bad_frame", "frame is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail("bad_frame", "frame must be a JSON object");
  }
  const version = (value as { v?: unknown }).v;
  if (version !== PROTOCOL_VERSION) {
    return fail(
      "unsupported_version",
      `protocol version ${String(version)} is not supported; this peer speaks ${PROTOCOL_VERSION}`,
    );
  }
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

/** Control plane side: a frame received from an agent. */
export const decodeAgentFrame = (raw: string | Uint8Array): DecodeResult<AgentFrame> => decode(raw, AgentFrameSchema);

/** Agent side: a frame received from the control plane. */
export const decodeServerFrame = (raw: string | Uint8Array): DecodeResult<ServerFrame> =>
  decode(raw, ServerFrameSchema);

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
