import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import {
  CHUNK_BYTES,
  DecryptionError,
  DecryptStream,
  EncryptStream,
  encryptedSize,
  HEADER_BYTES,
  RECORD_HEADER_BYTES,
  TAG_BYTES,
} from "./crypto.js";

const key = randomBytes(32);

/** Feeds `data` in pieces of `piece` bytes (so records straddle writes) and collects the output. */
async function through(stream: NodeJS.ReadWriteStream, data: Buffer, piece = 10_000): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) pieces.push(data.subarray(i, i + piece));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    stream,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

const encrypt = (data: Buffer, k = key, piece?: number) => through(new EncryptStream(k), data, piece);
const decrypt = (data: Buffer, k = key, piece?: number) => through(new DecryptStream(k), data, piece);

const recordSize = (plain: number) => RECORD_HEADER_BYTES + plain + TAG_BYTES;

describe("aes-256-gcm-chunked-v1", () => {
  it.each([
    ["0 bytes", 0],
    ["1 byte", 1],
    ["exactly one chunk", CHUNK_BYTES],
    ["one chunk + 1", CHUNK_BYTES + 1],
    ["two chunks exactly", 2 * CHUNK_BYTES],
    ["a few MiB", 3 * 1024 * 1024 + 12_345],
  ])("round-trips %s", async (_name, size) => {
    const plain = randomBytes(size);
    for (const piece of [7, 65_537, 1 << 20]) {
      if (size > 200_000 && piece === 7) continue; // tiny writes of MiBs take too long for no extra coverage
      const sealed = await encrypt(plain, key, piece);
      expect(sealed.length).toBe(encryptedSize(size));
      expect(sealed.subarray(0, 4).toString("ascii")).toBe("SMBK");
      const opened = await decrypt(sealed, key, piece);
      expect(opened.equals(plain)).toBe(true);
    }
  });

  it("never repeats a nonce prefix: two encryptions of the same data differ", async () => {
    const plain = Buffer.from("same data");
    const a = await encrypt(plain);
    const b = await encrypt(plain);
    expect(a.equals(b)).toBe(false);
    expect((await decrypt(a)).toString()).toBe("same data");
    expect((await decrypt(b)).toString()).toBe("same data");
  });

  it("detects a flipped byte in the header, a record header, a ciphertext and a tag", async () => {
    const plain = randomBytes(CHUNK_BYTES * 2 + 100);
    const sealed = await encrypt(plain);
    const positions = [
      5, // nonce prefix
      HEADER_BYTES + RECORD_HEADER_BYTES + 10, // first ciphertext
      HEADER_BYTES + recordSize(CHUNK_BYTES) - 1, // first tag
      HEADER_BYTES + recordSize(CHUNK_BYTES) + RECORD_HEADER_BYTES + 3, // second ciphertext
      sealed.length - 1, // last tag
    ];
    for (const pos of positions) {
      const bad = Buffer.from(sealed);
      bad[pos] = (bad[pos] as number) ^ 0x01;
      await expect(decrypt(bad), `byte ${pos}`).rejects.toBeInstanceOf(DecryptionError);
    }
  });

  it("refuses a final flag set on a non-final record, and a bad magic", async () => {
    const sealed = await encrypt(randomBytes(CHUNK_BYTES + 5));
    const forged = Buffer.from(sealed.subarray(0, HEADER_BYTES + recordSize(CHUNK_BYTES)));
    forged[HEADER_BYTES] = 1; // claim the first record is the last: the AAD no longer matches
    await expect(decrypt(forged)).rejects.toThrow(/failed authentication/);
    const magic = Buffer.from(sealed);
    magic[0] = 0x58;
    await expect(decrypt(magic)).rejects.toThrow(/bad magic/);
  });

  it("detects truncation at a record boundary, inside a record and inside the header", async () => {
    const sealed = await encrypt(randomBytes(CHUNK_BYTES * 3 + 1));
    for (const cut of [HEADER_BYTES + recordSize(CHUNK_BYTES), HEADER_BYTES + 100, 8, sealed.length - 1]) {
      await expect(decrypt(sealed.subarray(0, cut)), `cut at ${cut}`).rejects.toThrow(/truncated|authentication/);
    }
    // Cut exactly at the boundary before the final record: every record read is valid, the end is not.
    await expect(decrypt(sealed.subarray(0, HEADER_BYTES + 3 * recordSize(CHUNK_BYTES)))).rejects.toThrow(/truncated/);
  });

  it("detects reordered and duplicated records", async () => {
    const sealed = await encrypt(randomBytes(CHUNK_BYTES * 3));
    const header = sealed.subarray(0, HEADER_BYTES);
    const rec = (i: number) =>
      sealed.subarray(HEADER_BYTES + i * recordSize(CHUNK_BYTES), HEADER_BYTES + (i + 1) * recordSize(CHUNK_BYTES));
    const swapped = Buffer.concat([header, rec(1), rec(0), rec(2)]);
    await expect(decrypt(swapped)).rejects.toThrow(/chunk 0 failed authentication/);
    const duplicated = Buffer.concat([header, rec(0), rec(0), rec(1), rec(2)]);
    await expect(decrypt(duplicated)).rejects.toThrow(/chunk 1 failed authentication/);
  });

  it("detects bytes after the final record", async () => {
    const sealed = await encrypt(Buffer.from("hello"));
    await expect(decrypt(Buffer.concat([sealed, Buffer.from([0])]))).rejects.toThrow(/after the final chunk/);
  });

  it("fails with a wrong key at the first record, passing no plaintext on", async () => {
    const sealed = await encrypt(randomBytes(CHUNK_BYTES * 2));
    const out: Buffer[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    });
    await expect(pipeline(Readable.from([sealed]), new DecryptStream(randomBytes(32)), sink)).rejects.toThrow(
      /chunk 0 failed authentication \(wrong key/,
    );
    expect(out).toHaveLength(0);
  });

  it("rejects keys that are not 32 bytes", () => {
    expect(() => new EncryptStream(randomBytes(16))).toThrow(/32 bytes/);
    expect(() => new DecryptStream(randomBytes(31))).toThrow(/32 bytes/);
  });

  it("streams a large input with bounded buffering (output begins before input ends)", async () => {
    const enc = new EncryptStream(key);
    let outBytes = 0;
    enc.on("data", (c: Buffer) => {
      outBytes += c.length;
    });
    const hash = createHash("sha256");
    for (let i = 0; i < 10; i++) {
      const piece = randomBytes(CHUNK_BYTES);
      hash.update(piece);
      enc.write(piece);
    }
    await new Promise((r) => setImmediate(r));
    // Nine records are out while the tenth is held back until the end is known.
    expect(outBytes).toBe(HEADER_BYTES + 9 * recordSize(CHUNK_BYTES));
    enc.end();
    await new Promise((r) => enc.on("end", r));
    expect(outBytes).toBe(encryptedSize(10 * CHUNK_BYTES));
  });
});
