import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

/**
 * The control plane's whole use of object storage (ADR 0015): it never moves backup bytes, it
 * only opens and closes multipart uploads, signs URLs for the agent, checks and deletes objects.
 * Signing is the AWS SDK's; nothing here builds a signature by hand.
 */

export interface S3Location {
  /** Empty → AWS S3's own endpoint for `region`. */
  endpoint: string | null;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
}

/** How long the agent's presigned UploadPart URLs work. */
export const UPLOAD_URL_SECONDS = 15 * 60;
/** How long a restore job's presigned GET URLs work (a restore may queue, then download for hours). */
export const RESTORE_URL_SECONDS = 6 * 60 * 60;
/** The short-lived download link a member asks for. */
export const DOWNLOAD_URL_SECONDS = 15 * 60;

export function s3Client(loc: S3Location): S3Client {
  return new S3Client({
    region: loc.region,
    ...(loc.endpoint ? { endpoint: loc.endpoint } : {}),
    forcePathStyle: loc.forcePathStyle,
    credentials: { accessKeyId: loc.accessKeyId, secretAccessKey: loc.secretAccessKey },
    // Checksums only where S3 requires them: many S3-compatible servers store the SDK's default
    // CRC framing inside the object or reject the headers (docs/backups.md, environment traps).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 2,
  });
}

/** An S3 call failed; `code` is S3's error code (or the network error's), never a credential. */
export class S3Failure extends Error {
  override name = "S3Failure";
  constructor(
    readonly operation: string,
    readonly code: string,
    readonly httpStatus: number | undefined,
  ) {
    super(`${operation} failed: ${code}${httpStatus ? ` (HTTP ${httpStatus})` : ""}`);
  }
}

/**
 * Turn whatever the SDK threw into an S3Failure that is safe to show and log: only the error
 * code and HTTP status are kept (S3 messages can echo request details; the SDK's can name hosts).
 */
export function s3Failure(operation: string, err: unknown): S3Failure {
  if (err instanceof S3Failure) return err;
  const e = (err ?? {}) as { name?: unknown; Code?: unknown; code?: unknown; $metadata?: { httpStatusCode?: number } };
  const raw = [e.Code, e.code, e.name].find((v) => typeof v === "string" && v !== "Error" && v !== "");
  const code = typeof raw === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(raw) ? raw : "UnknownError";
  return new S3Failure(operation, code, e.$metadata?.httpStatusCode);
}

/**
 * The control plane refused to call a target's endpoint (endpoint-guard.ts). An S3Failure so that
 * every path that handles a failed storage call (failing the backup, retrying retention, the
 * test's audit row) handles this one too; `message` is the user-facing sentence.
 */
export class EndpointRefused extends S3Failure {
  override name = "EndpointRefused";
  constructor(operation: string, reason: string) {
    super(operation, "PrivateEndpointRefused", undefined);
    this.message = reason;
  }
}

async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw s3Failure(operation, err);
  }
}

/**
 * Object storage at one location, with the operations backups need.
 *
 * `guard` (when given) says why the endpoint must not be called, or null. It runs once per store,
 * right before the first request the control plane itself sends; stores live for one operation, so
 * that is at the time of use, not at the time the target was saved. Presigning is not guarded: it
 * is local computation, and the URLs are fetched by agents and browsers, not by the control plane.
 */
export class ObjectStore {
  readonly client: S3Client;
  #verdict: Promise<string | null> | undefined;
  constructor(
    readonly loc: S3Location,
    private readonly guard?: () => Promise<string | null>,
  ) {
    this.client = s3Client(loc);
  }

  async #allowed(operation: string): Promise<void> {
    if (!this.guard) return;
    this.#verdict ??= this.guard();
    const refusal = await this.#verdict;
    if (refusal) throw new EndpointRefused(operation, refusal);
  }

  close(): void {
    this.client.destroy();
  }

  async createUpload(key: string): Promise<string> {
    await this.#allowed("CreateMultipartUpload");
    const out = await call("CreateMultipartUpload", () =>
      this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.loc.bucket,
          Key: key,
          ContentType: "application/octet-stream",
        }),
      ),
    );
    if (!out.UploadId) throw new S3Failure("CreateMultipartUpload", "NoUploadId", undefined);
    return out.UploadId;
  }

  presignPart(key: string, uploadId: string, partNumber: number, seconds = UPLOAD_URL_SECONDS): Promise<string> {
    return call("PresignUploadPart", () =>
      getSignedUrl(
        this.client,
        new UploadPartCommand({ Bucket: this.loc.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber }),
        { expiresIn: seconds },
      ),
    );
  }

  async completeUpload(key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<void> {
    await this.#allowed("CompleteMultipartUpload");
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    await call("CompleteMultipartUpload", () =>
      this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.loc.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: sorted.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      ),
    );
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.#allowed("AbortMultipartUpload");
    await call("AbortMultipartUpload", () =>
      this.client.send(new AbortMultipartUploadCommand({ Bucket: this.loc.bucket, Key: key, UploadId: uploadId })),
    );
  }

  /** The stored object's size, or null when it does not exist. */
  async sizeOf(key: string): Promise<number | null> {
    await this.#allowed("HeadObject");
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: key }));
      return out.ContentLength ?? 0;
    } catch (err) {
      const f = s3Failure("HeadObject", err);
      if (f.httpStatus === 404 || f.code === "NotFound" || f.code === "NoSuchKey") return null;
      throw f;
    }
  }

  presignGet(key: string, seconds: number, downloadName?: string): Promise<string> {
    return call("PresignGetObject", () =>
      getSignedUrl(
        this.client,
        new GetObjectCommand({
          Bucket: this.loc.bucket,
          Key: key,
          ...(downloadName ? { ResponseContentDisposition: `attachment; filename="${downloadName}"` } : {}),
        }),
        { expiresIn: seconds },
      ),
    );
  }

  /** Delete objects (absent ones count as deleted). */
  async deleteObjects(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#allowed("DeleteObjects");
    const out = await call("DeleteObjects", () =>
      this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.loc.bucket,
          Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
        }),
      ),
    );
    const failed = (out.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
    if (failed.length > 0) throw new S3Failure("DeleteObjects", failed[0]?.Code ?? "UnknownError", undefined);
  }

  /** Put and delete a small object: proves the endpoint, bucket and credentials allow writing. */
  async probe(key: string): Promise<void> {
    await this.#allowed("PutObject");
    await call("PutObject", () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.loc.bucket,
          Key: key,
          Body: "supamanager connection test\n",
          ContentType: "text/plain",
        }),
      ),
    );
    await call("DeleteObject", () => this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: key })));
  }
}

/** Join key segments with single slashes, ignoring empty ones (an empty target prefix). */
export function joinKey(...parts: string[]): string {
  return parts
    .flatMap((p) => p.split("/"))
    .filter((p) => p !== "")
    .join("/");
}
