import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { Writable } from "node:stream";
import { MAX_PARTS, UploadUrlsRequest, UploadUrlsResponse } from "@supamanager/shared";

export type Fetch = typeof fetch;

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  attempts: number;
  /** Delay before the second attempt; doubled for each further one (capped at 10 s). */
  baseDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const delayFor = (policy: RetryPolicy, attempt: number) => Math.min(10_000, policy.baseDelayMs * 2 ** (attempt - 1));

/** A failure worth trying again (network, 5xx, throttling); anything else fails at once. */
class Retryable extends Error {}
/** A failure that trying again cannot fix. */
class NoRetry extends Error {}

/** Where presigned UploadPart URLs come from. */
export interface PartUrls {
  urlFor(partNumber: number): Promise<string>;
  /** The URL was refused (403): ask again next time. */
  invalidate(partNumber: number): void;
}

export interface ControlPlaneUrlsOptions {
  /** The control plane's base URL (http/https), as in credentials.json. */
  controlPlaneUrl: string;
  credential: string;
  jobId: string;
  artifact: string;
  /** Part numbers asked for per request (the contract allows up to 100). */
  batch?: number;
  retry?: RetryPolicy;
  fetch?: Fetch;
  now?: () => number;
}

/**
 * Presigned UploadPart URLs asked for in small batches with the host credential
 * (`POST /agent/v1/jobs/{jobId}/upload-urls`). URLs are used until shortly before they expire;
 * the lifetime is measured against the response's Date header, so the host's clock may be off.
 */
export class ControlPlaneUrls implements PartUrls {
  private readonly urls = new Map<number, string>();
  /** Local time after which cached URLs are not used any more. */
  private usableUntil = 0;
  private readonly endpoint: string;
  private readonly batch: number;
  private readonly retry: RetryPolicy;
  private readonly fetch: Fetch;
  private readonly now: () => number;

  constructor(private readonly opts: ControlPlaneUrlsOptions) {
    const base = new URL(opts.controlPlaneUrl);
    base.pathname = `${base.pathname.replace(/\/+$/, "")}/agent/v1/jobs/${encodeURIComponent(opts.jobId)}/upload-urls`;
    base.search = "";
    base.hash = "";
    this.endpoint = base.toString();
    this.batch = Math.max(1, Math.min(100, opts.batch ?? 10));
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.fetch = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
  }

  async urlFor(partNumber: number): Promise<string> {
    const cached = this.urls.get(partNumber);
    if (cached && this.now() < this.usableUntil) return cached;
    await this.refill(partNumber);
    const url = this.urls.get(partNumber);
    if (!url) throw new Error(`the control plane sent no upload URL for part ${partNumber} of ${this.opts.artifact}`);
    return url;
  }

  invalidate(partNumber: number): void {
    this.urls.delete(partNumber);
  }

  private async refill(first: number): Promise<void> {
    const partNumbers: number[] = [];
    for (let n = first; n < first + this.batch && n <= MAX_PARTS; n++) partNumbers.push(n);
    const body: UploadUrlsRequest = UploadUrlsRequest.parse({ artifact: this.opts.artifact, partNumbers });
    for (let attempt = 1; ; attempt++) {
      try {
        const sentAt = this.now();
        const res = await this.fetch(this.endpoint, {
          method: "POST",
          headers: { authorization: `Bearer ${this.opts.credential}`, "content-type": "application/json" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        if (!res.ok) {
          const why = `the control plane refused upload URLs for ${this.opts.artifact} (HTTP ${res.status}): ${messageOf(text)}`;
          if (res.status >= 500 || res.status === 429) throw new Retryable(why);
          throw new Error(why);
        }
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new Error("the control plane answered upload URLs with something that is not JSON");
        }
        const parsed = UploadUrlsResponse.safeParse(json);
        if (!parsed.success) throw new Error("the control plane answered upload URLs in an unexpected shape");
        const expires = Date.parse(parsed.data.expiresAt);
        if (Number.isNaN(expires)) throw new Error("the control plane sent an unreadable expiresAt for upload URLs");
        // Date has whole seconds: the server's clock may be up to a second past it (be pessimistic).
        const serverDate = Date.parse(res.headers.get("date") ?? "");
        const lifetime = expires - (Number.isNaN(serverDate) ? sentAt : serverDate + 999);
        // Stop using URLs a little before they expire: a quarter of their life, at most a minute.
        const margin = Math.min(60_000, Math.max(0, lifetime) / 4);
        this.usableUntil = sentAt + lifetime - margin;
        this.urls.clear();
        for (const u of parsed.data.urls) this.urls.set(u.partNumber, u.url);
        return;
      } catch (err) {
        const retryable = err instanceof Retryable || isNetworkError(err);
        if (!retryable || attempt >= this.retry.attempts) {
          if (isNetworkError(err)) {
            throw new Error(`cannot reach the control plane for upload URLs: ${(err as Error).message}`);
          }
          throw err;
        }
        await sleep(delayFor(this.retry, attempt));
      }
    }
  }
}

function messageOf(text: string): string {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof m === "string") return m.slice(0, 300);
  } catch {
    // not JSON
  }
  return text.slice(0, 300) || "(no message)";
}

function isNetworkError(err: unknown): boolean {
  return (
    err instanceof TypeError || (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError"))
  );
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
}

/** One PUT of a part's bytes to a presigned URL: the status and the ETag header. */
export type PutPart = (
  url: string,
  body: Buffer,
  signal: AbortSignal,
) => Promise<{ status: number; etag: string | null }>;

/**
 * PUT with node:http(s), writing the part's buffer as it is. (fetch would copy the body first, as
 * the Fetch standard requires: one more part in memory for every request.)
 */
export const httpPut: PutPart = (url, body, signal) =>
  new Promise((resolve, reject) => {
    const u = new URL(url);
    const request = u.protocol === "https:" ? httpsRequest : httpRequest;
    const req = request(
      u,
      { method: "PUT", headers: { "content-length": String(body.length) }, signal },
      (res: IncomingMessage) => {
        const etag = res.headers.etag;
        res.on("error", reject);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, etag: typeof etag === "string" ? etag : null }));
        // The answer is a little XML, success or not: read it so the connection can be reused.
        res.resume();
      },
    );
    req.on("error", reject);
    req.end(body);
  });

export interface PartUploaderOptions {
  artifact: string;
  partSizeBytes: number;
  urls: PartUrls;
  retry?: RetryPolicy;
  put?: PutPart;
  /** Upper bound for one PUT (default 10 minutes). */
  partTimeoutMs?: number;
}

/**
 * The sink of a backup stream: hashes and counts the bytes as stored, cuts them into parts of
 * `partSizeBytes` and PUTs each to its presigned URL. One part is uploading while the next one
 * fills; when that one is full too, writes wait (backpressure). The two part buffers are reused
 * from part to part, so the uploader holds exactly two parts of memory (allocated as needed)
 * whatever the size of the artifact. An empty artifact is stored as one empty part (a multipart
 * upload needs at least one).
 */
export class PartUploader extends Writable {
  private readonly hash = createHash("sha256");
  private bytes = 0;
  private buffer: Buffer | null = null;
  private filled = 0;
  private nextPart = 1;
  private inflight: Promise<void> | null = null;
  private readonly uploaded: UploadedPart[] = [];
  private readonly abort = new AbortController();
  private readonly retry: RetryPolicy;
  private readonly put: PutPart;
  /** Buffers not in use, for the next part. */
  private readonly spare: Buffer[] = [];
  /** Part buffers ever allocated (never more than two). */
  buffersAllocated = 0;

  constructor(private readonly opts: PartUploaderOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.put = opts.put ?? httpPut;
  }

  /** Size, SHA-256 and parts of what was stored; valid once the stream has finished. */
  result(): { sizeBytes: number; sha256: string; parts: UploadedPart[] } {
    return {
      sizeBytes: this.bytes,
      sha256: this.hash.copy().digest("hex"),
      parts: [...this.uploaded].sort((a, b) => a.partNumber - b.partNumber),
    };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.take(chunk).then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    (async () => {
      await this.waitInflight();
      if (this.filled > 0 || this.nextPart === 1) {
        const last = this.buffer ?? Buffer.alloc(0);
        this.startPart(last, this.filled);
        await this.waitInflight();
      }
    })().then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.abort.abort();
    this.buffer = null;
    this.spare.length = 0;
    cb(err);
  }

  private async take(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.buffer) {
        this.buffer = this.spare.pop() ?? this.allocate();
        this.filled = 0;
      }
      const n = Math.min(chunk.length - offset, this.buffer.length - this.filled);
      chunk.copy(this.buffer, this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      if (this.filled === this.buffer.length) {
        // The previous part must be done before this one goes: at most two buffers exist.
        await this.waitInflight();
        const full = this.buffer;
        this.buffer = null;
        this.filled = 0;
        this.startPart(full, full.length);
      }
    }
  }

  private allocate(): Buffer {
    this.buffersAllocated += 1;
    return Buffer.allocUnsafeSlow(this.opts.partSizeBytes);
  }

  private startPart(buffer: Buffer, length: number): void {
    const partNumber = this.nextPart++;
    if (partNumber > MAX_PARTS) {
      throw new Error(
        `${this.opts.artifact} needs more than ${MAX_PARTS} parts of ${this.opts.partSizeBytes} bytes; use a larger part size`,
      );
    }
    const p = this.uploadPart(partNumber, buffer.subarray(0, length)).then(() => {
      // Sent and acknowledged: the buffer can take the next part.
      if (buffer.length === this.opts.partSizeBytes) this.spare.push(buffer);
    });
    // Observed by waitInflight; the catch only keeps an early failure from being "unhandled".
    p.catch(() => {});
    this.inflight = p;
  }

  private async waitInflight(): Promise<void> {
    const p = this.inflight;
    this.inflight = null;
    if (p) await p;
  }

  private async uploadPart(partNumber: number, body: Buffer): Promise<void> {
    const label = `part ${partNumber} of ${this.opts.artifact}`;
    for (let attempt = 1; ; attempt++) {
      if (this.abort.signal.aborted) throw new Error(`upload of ${label} cancelled`);
      // Failures to get a URL were retried already; they end the upload.
      const url = await this.opts.urls.urlFor(partNumber);
      let why: string;
      let retryable = true;
      try {
        const res = await this.put(
          url,
          body,
          AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.partTimeoutMs ?? 10 * 60_000)]),
        );
        if (res.status >= 200 && res.status < 300) {
          if (!res.etag) throw new NoRetry(`object storage answered ${label} without an ETag`);
          this.uploaded.push({ partNumber, etag: res.etag });
          return;
        }
        why = `HTTP ${res.status}`;
        // 403: most likely an expired URL; a fresh one is asked for on the next attempt.
        if (res.status === 403) this.opts.urls.invalidate(partNumber);
        else if (res.status < 500 && res.status !== 408 && res.status !== 429) retryable = false;
      } catch (err) {
        if (this.abort.signal.aborted || err instanceof NoRetry) throw err;
        // Network errors and timeouts; the message never carries the URL.
        why = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
      }
      if (!retryable || attempt >= this.retry.attempts) {
        throw new Error(`upload of ${label} failed after ${attempt} attempt(s): ${why}`);
      }
      await sleep(delayFor(this.retry, attempt));
    }
  }
}
