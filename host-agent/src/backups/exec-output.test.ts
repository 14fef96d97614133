import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { ExecOutput, STDERR_KEEP_BYTES } from "./exec-output.js";

function frame(kind: number, payload: Buffer | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** Feeds `data` in pieces of `piece` bytes (frames and headers split anywhere). */
async function demux(
  data: Buffer,
  piece: number,
  out = new ExecOutput(),
): Promise<{ stdout: Buffer; out: ExecOutput }> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) pieces.push(data.subarray(i, i + piece));
  const got: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    out,
    new Writable({
      write(c: Buffer, _e, cb) {
        got.push(Buffer.from(c));
        cb();
      },
    }),
  );
  return { stdout: Buffer.concat(got), out };
}

describe("ExecOutput", () => {
  const stream = Buffer.concat([
    frame(1, "hello "),
    frame(2, "warning: one\n"),
    frame(1, Buffer.alloc(0)),
    frame(1, Buffer.alloc(100_000, 0x61)),
    frame(2, "error: two\n"),
    frame(1, " bye"),
  ]);

  it.each([1, 3, 7, 8, 9, 4096, 1 << 20])("passes stdout on and keeps stderr, in pieces of %i bytes", async (piece) => {
    const { stdout, out } = await demux(stream, piece);
    expect(stdout.toString()).toBe(`hello ${"a".repeat(100_000)} bye`);
    expect(out.stderrTail()).toBe("warning: one\nerror: two\n");
  });

  it("keeps only the tail of a long stderr", async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => frame(2, `line ${i}\n`));
    const { out } = await demux(Buffer.concat(lines), 1000);
    const tail = out.stderrTail();
    expect(tail.length).toBeLessThanOrEqual(STDERR_KEEP_BYTES);
    expect(tail.endsWith("line 1999\n")).toBe(true);
    expect(tail).not.toContain("line 0\n");
  });

  it("refuses raw (TTY) output and a stream cut inside a frame", async () => {
    await expect(demux(Buffer.from("PGDMP raw bytes, no frames"), 100)).rejects.toThrow(/unexpected output framing/);
    await expect(demux(frame(1, "abcdef").subarray(0, 10), 100)).rejects.toThrow(/ended inside a frame/);
  });

  it("errors the stream when the check at the end fails, before the end is passed on", async () => {
    const out = new ExecOutput(async (o) => {
      throw new Error(`exit 1: ${o.stderrTail().trim()}`);
    });
    await expect(demux(Buffer.concat([frame(1, "x"), frame(2, "boom")]), 100, out)).rejects.toThrow("exit 1: boom");
  });
});
