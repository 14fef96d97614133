/**
 * `aes-256-gcm-chunked-v1`: streamed authenticated encryption of backup artifacts.
 *
 * Byte layout (all integers big-endian):
 *
 *   header, 13 bytes:
 *     magic          4 bytes   "SMBK"
 *     version        1 byte    0x01
 *     nonce prefix   8 bytes   random, new for every stream
 *   then one record per plaintext chunk, chunk counter i = 0, 1, 2, …:
 *     flags          1 byte    0x00 = more records follow, 0x01 = the final record
 *     length         4 bytes   plaintext length: exactly 65536 in a non-final record, 0..65536 in the final one
 *     ciphertext     `length` bytes
 *     tag           16 bytes   the GCM authentication tag
 *   nothing after the final record.
 *
 * Each chunk is sealed with AES-256-GCM under the job's 32-byte key, nonce (12 bytes) = prefix ||
 * uint32(i), AAD = header || uint32(i) || flags || length. So every record is verified on its
 * own as it arrives (a restore never needs the whole file in memory), and:
 * - a changed byte anywhere fails that record's tag (the header is in every AAD);
 * - reordered or duplicated records fail (the counter is in the nonce and the AAD);
 * - a stream cut after any record fails (only a record sealed with the final flag may end it,
 *   and a final flag cannot be forged onto a non-final record);
 * - a wrong key fails the first record.
 * The random prefix keeps nonces unique across streams under the same key (2^32 chunks of
 * 64 KiB = 256 TiB per stream). An empty plaintext is the header plus one empty final record.
 * Overhead: 13 bytes + 21 bytes per 64 KiB (0.03 %).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

export const MAGIC = Buffer.from("SMBK", "ascii");
export const FORMAT_VERSION = 1;
export const CHUNK_BYTES = 64 * 1024;
export const HEADER_BYTES = 13;
export const RECORD_HEADER_BYTES = 5;
export const TAG_BYTES = 16;
const FLAG_MORE = 0;
const FLAG_FINAL = 1;
const MAX_COUNTER = 0xffff_ffff;

export class DecryptionError extends Error {
  override readonly name = "DecryptionError";
}

function checkKey(key: Buffer): void {
  if (key.length !== 32) throw new Error("an aes-256-gcm-chunked-v1 key is 32 bytes");
}

function nonceFor(prefix: Buffer, counter: number): Buffer {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(counter, 8);
  return nonce;
}

function aadFor(header: Buffer, counter: number, recordHeader: Buffer): Buffer {
  const aad = Buffer.alloc(HEADER_BYTES + 4 + RECORD_HEADER_BYTES);
  header.copy(aad, 0);
  aad.writeUInt32BE(counter, HEADER_BYTES);
  recordHeader.copy(aad, HEADER_BYTES + 4);
  return aad;
}

/** A FIFO of buffers from which exact byte counts are taken without copying everything each time. */
class ByteQueue {
  private readonly items: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.items.push(b);
    this.length += b.length;
  }

  /** Removes and returns the first n bytes (n ≤ length). */
  take(n: number): Buffer {
    const first = this.items[0];
    if (first && first.length >= n) {
      this.length -= n;
      if (first.length === n) this.items.shift();
      else this.items[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.items[0] as Buffer;
      const want = n - filled;
      if (head.length <= want) {
        head.copy(out, filled);
        filled += head.length;
        this.items.shift();
      } else {
        head.copy(out, filled, 0, want);
        this.items[0] = head.subarray(want);
        filled += want;
      }
    }
    this.length -= n;
    return out;
  }

  peekByte(i: number): number | undefined {
    let offset = i;
    for (const b of this.items) {
      if (offset < b.length) return b[offset];
      offset -= b.length;
    }
    return undefined;
  }
}

/** Plaintext in, `aes-256-gcm-chunked-v1` out. Holds at most one chunk (64 KiB) plus the last write. */
export class EncryptStream extends Transform {
  private readonly key: Buffer;
  private readonly header: Buffer;
  private readonly prefix: Buffer;
  private readonly pending = new ByteQueue();
  private counter = 0;
  private headerSent = false;

  constructor(key: Buffer) {
    super();
    checkKey(key);
    this.key = key;
    this.prefix = randomBytes(8);
    this.header = Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION]), this.prefix]);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.sendHeader();
      this.pending.push(chunk);
      // Strictly more than one chunk: the last full chunk may turn out to be the final one.
      while (this.pending.length > CHUNK_BYTES) this.seal(this.pending.take(CHUNK_BYTES), false);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.sendHeader();
      this.seal(this.pending.take(this.pending.length), true);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.push(this.header);
  }

  private seal(plain: Buffer, final: boolean): void {
    if (this.counter > MAX_COUNTER) throw new Error("aes-256-gcm-chunked-v1: stream too long (2^32 chunks)");
    const recordHeader = Buffer.alloc(RECORD_HEADER_BYTES);
    recordHeader[0] = final ? FLAG_FINAL : FLAG_MORE;
    recordHeader.writeUInt32BE(plain.length, 1);
    const cipher = createCipheriv("aes-256-gcm", this.key, nonceFor(this.prefix, this.counter), {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(aadFor(this.header, this.counter, recordHeader));
    const body = cipher.update(plain);
    cipher.final();
    this.push(Buffer.concat([recordHeader, body, cipher.getAuthTag()]));
    this.counter += 1;
  }
}

/**
 * `aes-256-gcm-chunked-v1` in, plaintext out. Each record is authenticated before its plaintext
 * is passed on; any failure (wrong key, altered, reordered or missing records, trailing bytes)
 * errors the stream with a DecryptionError.
 */
export class DecryptStream extends Transform {
  private readonly key: Buffer;
  private readonly queue = new ByteQueue();
  private header: Buffer | null = null;
  private prefix: Buffer | null = null;
  private counter = 0;
  private done = false;

  constructor(key: Buffer) {
    super();
    checkKey(key);
    this.key = key;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (this.done && chunk.length > 0) throw new DecryptionError("encrypted artifact: bytes after the final chunk");
      this.queue.push(chunk);
      this.drain();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (!this.done) {
      cb(new DecryptionError("encrypted artifact is truncated (no final chunk)"));
      return;
    }
    cb();
  }

  private drain(): void {
    if (!this.header) {
      if (this.queue.length < HEADER_BYTES) return;
      const header = Buffer.from(this.queue.take(HEADER_BYTES));
      if (!header.subarray(0, 4).equals(MAGIC) || header[4] !== FORMAT_VERSION) {
        throw new DecryptionError("not an aes-256-gcm-chunked-v1 stream (bad magic or version)");
      }
      this.header = header;
      this.prefix = header.subarray(5, 13);
    }
    while (!this.done && this.queue.length >= RECORD_HEADER_BYTES) {
      const flags = this.queue.peekByte(0);
      const length =
        ((this.queue.peekByte(1) as number) * 2 ** 24 +
          ((this.queue.peekByte(2) as number) << 16) +
          ((this.queue.peekByte(3) as number) << 8) +
          (this.queue.peekByte(4) as number)) >>>
        0;
      if (flags !== FLAG_MORE && flags !== FLAG_FINAL) {
        throw new DecryptionError(`encrypted artifact: chunk ${this.counter} has unknown flags`);
      }
      if (length > CHUNK_BYTES || (flags === FLAG_MORE && length !== CHUNK_BYTES)) {
        throw new DecryptionError(`encrypted artifact: chunk ${this.counter} has a bad length`);
      }
      if (this.queue.length < RECORD_HEADER_BYTES + length + TAG_BYTES) return;
      const recordHeader = Buffer.from(this.queue.take(RECORD_HEADER_BYTES));
      const body = this.queue.take(length);
      const tag = this.queue.take(TAG_BYTES);
      this.push(this.open(recordHeader, body, tag));
      this.counter += 1;
      if (flags === FLAG_FINAL) this.done = true;
    }
    if (this.done && this.queue.length > 0) {
      throw new DecryptionError("encrypted artifact: bytes after the final chunk");
    }
  }

  private open(recordHeader: Buffer, body: Buffer, tag: Buffer): Buffer {
    if (this.counter > MAX_COUNTER) throw new DecryptionError("encrypted artifact: too many chunks");
    const decipher = createDecipheriv("aes-256-gcm", this.key, nonceFor(this.prefix as Buffer, this.counter), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aadFor(this.header as Buffer, this.counter, recordHeader));
    decipher.setAuthTag(tag);
    const plain = decipher.update(body);
    try {
      decipher.final();
    } catch {
      throw new DecryptionError(
        `encrypted artifact: chunk ${this.counter} failed authentication (wrong key, or the data was altered)`,
      );
    }
    return plain;
  }
}

/** Bytes of ciphertext for a plaintext of n bytes (what a backup stores). */
export function encryptedSize(plainBytes: number): number {
  const records = Math.max(1, Math.ceil(plainBytes / CHUNK_BYTES));
  return HEADER_BYTES + plainBytes + records * (RECORD_HEADER_BYTES + TAG_BYTES);
}
