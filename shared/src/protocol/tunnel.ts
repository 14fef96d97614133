import { z } from "zod";

/**
 * The tunnel's data connection (ADR 0035, docs/agent.md "The tunnel"): one WebSocket per host,
 * opened by the agent at /agent/v1/tunnel, separate from the control connection. Each binary
 * message is one frame:
 *
 *   byte 0      frame type (TUNNEL_FRAME)
 *   bytes 1–4   stream id, unsigned 32-bit big-endian (streams are opened by the control plane)
 *   bytes 5…    payload: JSON (OPEN, HEAD, RESET), raw bytes (DATA), a 32-bit big-endian credit
 *               increment (WINDOW), nothing (END)
 *
 * JSON payloads are validated with the zod schemas below; a frame that fails resets its stream
 * (or, when it cannot name one, closes the connection). Written without any Node API so that
 * another runtime can speak it.
 */
export const TUNNEL_FRAME = {
  /** control plane → agent: a new stream, payload TunnelOpen. */
  open: 1,
  /** agent → control plane: the response's status and headers, payload TunnelHead. */
  head: 2,
  /** either way: body bytes (at most TUNNEL_MAX_DATA_BYTES). */
  data: 3,
  /** either way: no more body from this side. */
  end: 4,
  /** either way: the stream is abandoned, payload TunnelReset. */
  reset: 5,
  /** either way: the receiver consumed this many more bytes; the sender may send that much more. */
  window: 6,
} as const;
export type TunnelFrameType = (typeof TUNNEL_FRAME)[keyof typeof TUNNEL_FRAME];

export const TUNNEL_HEADER_BYTES = 5;
/** Largest DATA payload: a body is cut into frames of at most this size. */
export const TUNNEL_MAX_DATA_BYTES = 64 * 1024;
/** Largest JSON payload (OPEN/HEAD carry headers). */
export const TUNNEL_MAX_JSON_BYTES = 256 * 1024;
/** Bytes a side may send on one stream before the receiver grants more (per direction). */
export const TUNNEL_DEFAULT_WINDOW = 512 * 1024;

/** A header name/value as Node's parser accepts them (no CR, LF or NUL that could split a head). */
const HeaderName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/, "invalid header name");
const HeaderValue = z
  .string()
  .max(64 * 1024)
  .refine((v) => !/[\r\n\0]/.test(v), "invalid header value");
/** Headers as [name, value] pairs, so repeated headers (set-cookie) survive. */
export const TunnelHeaders = z.array(z.tuple([HeaderName, HeaderValue])).max(512);
export type TunnelHeaders = z.infer<typeof TunnelHeaders>;

export const TunnelOpen = z.strictObject({
  ref: z.string().regex(/^[a-z]{20}$/),
  method: z.string().regex(/^[A-Z]{1,16}$/),
  /** Path and query, as the client sent them. */
  path: z
    .string()
    .min(1)
    .max(16 * 1024)
    .regex(/^\/[^\s]*$/, "a path starts with / and has no white space"),
  headers: TunnelHeaders,
  /** The client asked to upgrade the connection (a WebSocket): relay raw bytes after a 101. */
  upgrade: z.boolean(),
});
export type TunnelOpen = z.infer<typeof TunnelOpen>;

export const TunnelHead = z.strictObject({
  status: z.number().int().min(101).max(599),
  headers: TunnelHeaders,
});
export type TunnelHead = z.infer<typeof TunnelHead>;

export const TunnelReset = z.strictObject({
  code: z.enum(["refused", "unreachable", "timeout", "too_large", "cancelled", "protocol", "gone"]),
  message: z.string().max(500),
});
export type TunnelReset = z.infer<typeof TunnelReset>;

/** Headers that belong to one hop and are never relayed by either end (RFC 9110 §7.6.1). */
export const TUNNEL_HOP_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export interface TunnelFrame {
  type: TunnelFrameType;
  stream: number;
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Memory for an outgoing frame; every byte of it is written, so it need not be zeroed. */
export type TunnelAllocate = (bytes: number) => Uint8Array;

const zeroed: TunnelAllocate = (bytes) => new Uint8Array(bytes);

/**
 * One frame: the header and `payload` copied behind it (a WebSocket message is one contiguous
 * buffer). `allocate` may hand out unzeroed memory (Node: Buffer.allocUnsafe), which saves
 * clearing each 64 KiB DATA frame before it is overwritten.
 */
export function encodeTunnelFrame(
  type: TunnelFrameType,
  stream: number,
  payload?: Uint8Array,
  allocate: TunnelAllocate = zeroed,
): Uint8Array {
  const out = allocate(TUNNEL_HEADER_BYTES + (payload?.byteLength ?? 0));
  const id = stream >>> 0;
  out[0] = type;
  out[1] = id >>> 24;
  out[2] = (id >>> 16) & 0xff;
  out[3] = (id >>> 8) & 0xff;
  out[4] = id & 0xff;
  if (payload) out.set(payload, TUNNEL_HEADER_BYTES);
  return out;
}

export function encodeTunnelJson(
  type: typeof TUNNEL_FRAME.open | typeof TUNNEL_FRAME.head | typeof TUNNEL_FRAME.reset,
  stream: number,
  value: TunnelOpen | TunnelHead | TunnelReset,
): Uint8Array {
  return encodeTunnelFrame(type, stream, encoder.encode(JSON.stringify(value)));
}

export function encodeTunnelWindow(stream: number, increment: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, increment >>> 0);
  return encodeTunnelFrame(TUNNEL_FRAME.window, stream, payload);
}

const TYPES = new Set<number>(Object.values(TUNNEL_FRAME));

/** One frame from a binary message, or a reason it is not one. */
export function decodeTunnelFrame(data: Uint8Array): { ok: true; frame: TunnelFrame } | { ok: false; error: string } {
  if (data.byteLength < TUNNEL_HEADER_BYTES) return { ok: false, error: "frame shorter than its header" };
  const type = data[0] as number;
  if (!TYPES.has(type)) return { ok: false, error: `unknown frame type ${type}` };
  const stream = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1);
  const payload = data.subarray(TUNNEL_HEADER_BYTES);
  const max =
    type === TUNNEL_FRAME.data
      ? TUNNEL_MAX_DATA_BYTES
      : type === TUNNEL_FRAME.window
        ? 4
        : type === TUNNEL_FRAME.end
          ? 0
          : TUNNEL_MAX_JSON_BYTES;
  if (payload.byteLength > max) return { ok: false, error: `frame type ${type} payload over ${max} bytes` };
  if (type === TUNNEL_FRAME.window && payload.byteLength !== 4)
    return { ok: false, error: "window frame needs 4 bytes" };
  return { ok: true, frame: { type: type as TunnelFrameType, stream, payload } };
}

/** A JSON payload checked against `schema`, or a reason it is not one. */
export function parseTunnelJson<T extends z.ZodType>(
  schema: T,
  payload: Uint8Array,
): { ok: true; value: z.output<T> } | { ok: false; error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(payload));
  } catch {
    return { ok: false, error: "payload is not JSON" };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `${issue?.path.join(".") || "payload"}: ${issue?.message ?? "invalid"}` };
  }
  return { ok: true, value: parsed.data };
}
