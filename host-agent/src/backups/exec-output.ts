import { Transform, type TransformCallback } from "node:stream";

/** How much of a command's stderr is kept for an error message. */
export const STDERR_KEEP_BYTES = 8 * 1024;

/**
 * Demultiplexes the output of a Docker exec without a TTY — frames of an 8-byte header (byte 0:
 * 1 stdout, 2 stderr; bytes 4..7: payload size, big-endian) and the payload — as a stream:
 * stdout payloads are passed on (slices of the input, no copy), stderr is kept as a bounded tail.
 * Unlike dockerode's demuxStream it respects backpressure, so a slow consumer (an upload) pauses
 * the exec socket and, through Docker, the command's writes: memory stays bounded.
 *
 * `beforeEnd` runs when the output is complete and before the end is passed on; throwing there
 * (a non-zero exit code) errors the stream, so a consumer never treats a failed dump as complete.
 */
export class ExecOutput extends Transform {
  private header = Buffer.alloc(0);
  private remaining = 0;
  private current: number | null = null;
  private stderrParts: Buffer[] = [];
  private stderrBytes = 0;
  private stderrFirst: Buffer[] = [];
  private stderrFirstBytes = 0;

  constructor(
    private readonly beforeEnd?: (out: ExecOutput) => Promise<void>,
    private readonly keepBytes = STDERR_KEEP_BYTES,
  ) {
    super();
  }

  /** The first STDERR_KEEP_BYTES of stderr (where the first error of a command that went on is). */
  stderrHead(): string {
    return Buffer.concat(this.stderrFirst).toString("utf8");
  }

  /** The last `keepBytes` (STDERR_KEEP_BYTES unless told) of stderr, as text. */
  stderrTail(): string {
    return Buffer.concat(this.stderrParts).toString("utf8");
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.current === null) {
        const need = 8 - this.header.length;
        const piece = chunk.subarray(offset, offset + need);
        this.header = this.header.length === 0 ? Buffer.from(piece) : Buffer.concat([this.header, piece]);
        offset += piece.length;
        if (this.header.length < 8) break;
        const kind = this.header[0] as number;
        if (kind > 2 || this.header[1] !== 0 || this.header[2] !== 0 || this.header[3] !== 0) {
          cb(new Error("unexpected output framing from Docker exec (is a TTY attached?)"));
          return;
        }
        this.current = kind;
        this.remaining = this.header.readUInt32BE(4);
        this.header = Buffer.alloc(0);
        if (this.remaining === 0) this.current = null;
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      const payload = chunk.subarray(offset, offset + take);
      offset += take;
      this.remaining -= take;
      if (this.current === 2) this.keepStderr(payload);
      else this.push(payload);
      if (this.remaining === 0) this.current = null;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.current !== null || this.header.length > 0) {
      cb(new Error("Docker exec output ended inside a frame"));
      return;
    }
    if (!this.beforeEnd) {
      cb();
      return;
    }
    this.beforeEnd(this).then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }

  private keepStderr(payload: Buffer): void {
    if (this.stderrFirstBytes < STDERR_KEEP_BYTES) {
      const piece = Buffer.from(payload.subarray(0, STDERR_KEEP_BYTES - this.stderrFirstBytes));
      this.stderrFirst.push(piece);
      this.stderrFirstBytes += piece.length;
    }
    this.stderrParts.push(Buffer.from(payload));
    this.stderrBytes += payload.length;
    while (this.stderrBytes > this.keepBytes && this.stderrParts.length > 1) {
      const first = this.stderrParts.shift() as Buffer;
      this.stderrBytes -= first.length;
    }
    if (this.stderrBytes > this.keepBytes) {
      const only = this.stderrParts[0] as Buffer;
      this.stderrParts = [only.subarray(only.length - this.keepBytes)];
      this.stderrBytes = this.keepBytes;
    }
  }
}
