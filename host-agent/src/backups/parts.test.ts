import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MIN_PART_BYTES } from "@supamanager/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeUploadUrlServer, getObjectBytes, type S3Server, sha256, startS3rver } from "../test-support/s3.js";
import { ControlPlaneUrls, PartUploader, type PartUrls, type PutPart } from "./parts.js";

const fast = { attempts: 3, baseDelayMs: 1 };

function pieces(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

describe("PartUploader against s3rver, with the control plane handing out presigned URLs", () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3rver();
  });
  afterAll(async () => {
    await s3?.close();
  });

  async function upload(data: Buffer, opts: { jobId: string; batch?: number; claimedExpiresInMs?: number }) {
    const cp = new FakeUploadUrlServer(s3, opts.jobId, `backups/${opts.jobId}`);
    if (opts.claimedExpiresInMs !== undefined) cp.claimedExpiresInMs = opts.claimedExpiresInMs;
    await cp.start(["db.dump"]);
    try {
      const urls = new ControlPlaneUrls({
        controlPlaneUrl: `${cp.url}/`,
        credential: cp.credential,
        jobId: opts.jobId,
        artifact: "db.dump",
        batch: opts.batch ?? 2,
        retry: fast,
      });
      const uploader = new PartUploader({ artifact: "db.dump", partSizeBytes: MIN_PART_BYTES, urls, retry: fast });
      await pipeline(Readable.from(pieces(data, 100_000)), uploader);
      const result = uploader.result();
      await cp.complete("db.dump", result.parts);
      const stored = await getObjectBytes(s3, cp.key("db.dump"));
      return { result, stored, cp, uploader };
    } finally {
      await cp.close();
    }
  }

  it("stores 2.5 parts' worth of bytes in 3 parts, hashing what was stored", async () => {
    const data = randomBytes(Math.floor(MIN_PART_BYTES * 2.5));
    const { result, stored, cp, uploader } = await upload(data, { jobId: "job_parts_1" });
    expect(stored.equals(data)).toBe(true);
    expect(result.sizeBytes).toBe(data.length);
    expect(result.sha256).toBe(sha256(data));
    expect(result.parts.map((p) => p.partNumber)).toEqual([1, 2, 3]);
    for (const p of result.parts) expect(p.etag).toMatch(/^"?[0-9a-f]{32}"?$/);
    // Batches of two: parts 1-2, then 3-4.
    expect(cp.requests.map((r) => r.body.partNumbers)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(uploader.buffersAllocated).toBe(2);
  });

  it("stores an artifact of exactly one part, and an empty one as one empty part", async () => {
    const one = randomBytes(MIN_PART_BYTES);
    const a = await upload(one, { jobId: "job_parts_2" });
    expect(a.result.parts).toHaveLength(1);
    expect(a.stored.equals(one)).toBe(true);
    const b = await upload(Buffer.alloc(0), { jobId: "job_parts_3" });
    expect(b.result.parts).toHaveLength(1);
    expect(b.result.sizeBytes).toBe(0);
    expect(b.result.sha256).toBe(sha256(Buffer.alloc(0)));
    expect(b.stored.length).toBe(0);
  });

  it("asks again for URLs that are about to expire", async () => {
    // expiresAt claims 1 ms: every cached URL counts as expiring, so each part asks afresh.
    const data = randomBytes(MIN_PART_BYTES * 2 + 10);
    const { stored, cp } = await upload(data, { jobId: "job_parts_4", batch: 10, claimedExpiresInMs: 1 });
    expect(stored.equals(data)).toBe(true);
    expect(cp.requests.map((r) => r.body.partNumbers[0])).toEqual([1, 2, 3]);
  });

  it("fails with the control plane's message when it refuses (wrong credential)", async () => {
    const cp = new FakeUploadUrlServer(s3, "job_parts_5", "backups/job_parts_5");
    await cp.start(["db.dump"]);
    try {
      const urls = new ControlPlaneUrls({
        controlPlaneUrl: cp.url,
        credential: "wrong",
        jobId: "job_parts_5",
        artifact: "db.dump",
        retry: fast,
      });
      const uploader = new PartUploader({ artifact: "db.dump", partSizeBytes: MIN_PART_BYTES, urls, retry: fast });
      await expect(pipeline(Readable.from([Buffer.from("x")]), uploader)).rejects.toThrow(
        "the control plane refused upload URLs for db.dump (HTTP 401): bad credential",
      );
    } finally {
      await cp.close();
    }
  });
});

/** In-memory URL source and object store: the retry and backpressure logic on its own. */
class MemoryParts implements PartUrls {
  asked: number[] = [];
  invalidated: number[] = [];
  async urlFor(n: number): Promise<string> {
    this.asked.push(n);
    return `http://storage.invalid/part/${n}?v=${this.asked.length}`;
  }
  invalidate(n: number): void {
    this.invalidated.push(n);
  }
}

describe("PartUploader retries and backpressure (in-memory storage)", () => {
  const partSize = MIN_PART_BYTES;

  it("retries a part after 500, a network error and an expired URL (403 → new URL)", async () => {
    const urls = new MemoryParts();
    const answers: (number | "neterr")[] = [500, "neterr", 403];
    const seen: string[] = [];
    const put: PutPart = async (url) => {
      seen.push(url);
      const a = answers.shift();
      if (a === "neterr") throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
      if (a !== undefined) return { status: a, etag: null };
      return { status: 200, etag: '"abc"' };
    };
    const uploader = new PartUploader({
      artifact: "x",
      partSizeBytes: partSize,
      urls,
      retry: { attempts: 4, baseDelayMs: 1 },
      put,
    });
    await pipeline(Readable.from([Buffer.from("hello")]), uploader);
    expect(uploader.result().parts).toEqual([{ partNumber: 1, etag: '"abc"' }]);
    expect(seen).toHaveLength(4);
    expect(urls.invalidated).toEqual([1]);
  });

  it("gives up after the bounded number of attempts, and at once on a 400 or a missing ETag", async () => {
    const always =
      (status: number, etag: string | null = null): PutPart =>
      async () => ({ status, etag });
    const a = new PartUploader({
      artifact: "x",
      partSizeBytes: partSize,
      urls: new MemoryParts(),
      retry: fast,
      put: always(503),
    });
    await expect(pipeline(Readable.from([Buffer.from("x")]), a)).rejects.toThrow(
      "upload of part 1 of x failed after 3 attempt(s): HTTP 503",
    );
    const neterr = new PartUploader({
      artifact: "x",
      partSizeBytes: partSize,
      urls: new MemoryParts(),
      retry: fast,
      put: async () => {
        throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
      },
    });
    await expect(pipeline(Readable.from([Buffer.from("x")]), neterr)).rejects.toThrow(
      "upload of part 1 of x failed after 3 attempt(s): ECONNREFUSED",
    );
    let calls = 0;
    const b = new PartUploader({
      artifact: "x",
      partSizeBytes: partSize,
      urls: new MemoryParts(),
      retry: fast,
      put: async () => {
        calls++;
        return { status: 400, etag: null };
      },
    });
    await expect(pipeline(Readable.from([Buffer.from("x")]), b)).rejects.toThrow(/after 1 attempt\(s\): HTTP 400/);
    expect(calls).toBe(1);
    const c = new PartUploader({
      artifact: "x",
      partSizeBytes: partSize,
      urls: new MemoryParts(),
      retry: fast,
      put: always(200),
    });
    await expect(pipeline(Readable.from([Buffer.from("x")]), c)).rejects.toThrow(
      "object storage answered part 1 of x without an ETag",
    );
  });

  it("holds two part buffers: writes wait while one part uploads and the next is full", async () => {
    let release: (() => void) | null = null;
    let uploadsStarted = 0;
    const bodies: Buffer[] = [];
    const put: PutPart = async (_url, body) => {
      uploadsStarted++;
      bodies.push(Buffer.from(body.subarray(0, 1)));
      await new Promise<void>((r) => {
        release = r;
      });
      return { status: 200, etag: '"e"' };
    };
    const uploader = new PartUploader({ artifact: "x", partSizeBytes: partSize, urls: new MemoryParts(), put });
    let accepted = 0;
    const producer = (async () => {
      for (let i = 0; i < 20; i++) {
        const chunk = Buffer.alloc(1024 * 1024, i);
        await new Promise<void>((resolve, reject) => uploader.write(chunk, (err) => (err ? reject(err) : resolve())));
        accepted++;
      }
      await new Promise<void>((r) => uploader.end(r));
    })();
    // Part 1 (5 MiB) uploads and never finishes; part 2 fills; the 11th MiB cannot be taken.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(uploadsStarted).toBe(1);
    expect(accepted).toBeLessThanOrEqual(10);
    expect(uploader.buffersAllocated).toBe(2);
    // Let every upload finish: the producer completes, the buffers were reused.
    const drain = setInterval(() => release?.(), 1);
    await producer;
    clearInterval(drain);
    expect(uploader.result().parts.map((p) => p.partNumber)).toEqual([1, 2, 3, 4]);
    expect(uploader.buffersAllocated).toBe(2);
    // Each part carried its own bytes although buffers are reused (first byte = first MiB's fill).
    expect(bodies.map((b) => b[0])).toEqual([0, 5, 10, 15]);
  });
});

describe("ControlPlaneUrls (in-memory control plane)", () => {
  const base = { controlPlaneUrl: "http://cp.invalid/base/", credential: "cred", jobId: "job_1", artifact: "db.dump" };

  it("retries the control plane's 5xx, then uses the batch it answered", async () => {
    const calls: { url: string; auth: string | null; body: unknown }[] = [];
    let failures = 1;
    const urls = new ControlPlaneUrls({
      ...base,
      batch: 3,
      retry: fast,
      fetch: async (input, init) => {
        calls.push({
          url: String(input),
          auth: new Headers(init?.headers).get("authorization"),
          body: JSON.parse(String(init?.body)),
        });
        if (failures-- > 0) return new Response(JSON.stringify({ message: "busy" }), { status: 503 });
        const expiresAt = new Date(Date.now() + 900_000).toISOString();
        const list = [1, 2, 3].map((n) => ({ partNumber: n, url: `http://s3.invalid/p${n}` }));
        return Response.json({ urls: list, expiresAt });
      },
    });
    expect(await urls.urlFor(1)).toBe("http://s3.invalid/p1");
    expect(await urls.urlFor(3)).toBe("http://s3.invalid/p3");
    expect(calls).toHaveLength(2);
    expect(calls[0]).toEqual({
      url: "http://cp.invalid/base/agent/v1/jobs/job_1/upload-urls",
      auth: "Bearer cred",
      body: { artifact: "db.dump", partNumbers: [1, 2, 3] },
    });
    // A refused URL is asked for again.
    urls.invalidate(2);
    await urls.urlFor(2);
    expect(calls).toHaveLength(3);
  });

  it("fails on an answer of the wrong shape, or one missing the part asked for", async () => {
    const answering = (body: unknown) =>
      new ControlPlaneUrls({ ...base, retry: fast, fetch: async () => Response.json(body) });
    await expect(answering({ urls: "nope" }).urlFor(1)).rejects.toThrow("in an unexpected shape");
    const expiresAt = new Date(Date.now() + 900_000).toISOString();
    await expect(answering({ urls: [], expiresAt }).urlFor(1)).rejects.toThrow(
      "the control plane sent no upload URL for part 1 of db.dump",
    );
  });
});
