import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { UploadUrlsRequest } from "@supamanager/shared";
import { startS3rver as startS3rverWithBuckets } from "../../../control-plane/src/test-support/s3.js";

/**
 * A real S3-protocol server for the agent's tests and benchmarks, seen as one bucket: the
 * control plane's s3rver starter (control-plane/src/test-support/s3.ts, a child process on a
 * random loopback port that checks header signatures and implements AbortMultipartUpload), so
 * both packages test against the same server. See environment.md "Object storage for tests".
 */
export interface S3Server {
  endpoint: string;
  bucket: string;
  client: S3Client;
  close(): Promise<void>;
}

export async function startS3rver(bucket = "backups"): Promise<S3Server> {
  const s3 = await startS3rverWithBuckets({ buckets: [bucket] });
  return { endpoint: s3.endpoint, bucket, client: s3.client, close: () => s3.stop() };
}

export async function getObjectBytes(s3: S3Server, key: string): Promise<Buffer> {
  const res = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

export async function putObjectBytes(s3: S3Server, key: string, body: Buffer): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
}

export async function presignGet(s3: S3Server, key: string, expiresIn = 900): Promise<string> {
  return getSignedUrl(s3.client, new GetObjectCommand({ Bucket: s3.bucket, Key: key }), { expiresIn });
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * The control plane's side of a backup, as far as the agent sees it: one multipart upload per
 * artifact (key `<prefix>/<artifact>`), and `POST /agent/v1/jobs/{jobId}/upload-urls` answering
 * presigned UploadPart URLs for it. Tests complete the uploads with the agent's result.
 */
export class FakeUploadUrlServer {
  readonly credential = "host-credential-for-tests";
  readonly requests: { jobId: string; body: UploadUrlsRequest }[] = [];
  readonly uploads = new Map<string, string>();
  /** Lifetime of the presigned URLs handed out (seconds). */
  expiresIn = 900;
  /** Lifetime claimed in `expiresAt`, when it should differ (to test refreshing). */
  claimedExpiresInMs: number | null = null;
  /** When set, upload-urls requests are refused with 409 and this message. */
  refuseWith: string | null = null;
  private server: Server | null = null;
  url = "";

  constructor(
    private readonly s3: S3Server,
    readonly jobId: string,
    readonly prefix: string,
  ) {}

  key(artifact: string): string {
    return `${this.prefix}/${artifact}`;
  }

  async start(artifacts: readonly string[]): Promise<void> {
    for (const a of artifacts) {
      const res = await this.s3.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.s3.bucket, Key: this.key(a) }),
      );
      if (!res.UploadId) throw new Error("no UploadId");
      this.uploads.set(a, res.UploadId);
    }
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        void this.answer(req.method ?? "", req.url ?? "", req.headers.authorization, Buffer.concat(chunks)).then(
          ([status, body]) => {
            res.writeHead(status, { "content-type": "application/json" });
            res.end(JSON.stringify(body));
          },
        );
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async answer(
    method: string,
    path: string,
    auth: string | undefined,
    raw: Buffer,
  ): Promise<[number, unknown]> {
    const m = /^\/agent\/v1\/jobs\/([^/]+)\/upload-urls$/.exec(path);
    if (method !== "POST" || !m) return [404, { message: "not found" }];
    if (auth !== `Bearer ${this.credential}`) return [401, { message: "bad credential" }];
    if (decodeURIComponent(m[1] as string) !== this.jobId) return [404, { message: "no such job" }];
    const parsed = UploadUrlsRequest.safeParse(JSON.parse(raw.toString() || "null"));
    if (!parsed.success) return [400, { message: "bad request" }];
    this.requests.push({ jobId: this.jobId, body: parsed.data });
    if (this.refuseWith) return [409, { message: this.refuseWith }];
    const uploadId = this.uploads.get(parsed.data.artifact);
    if (!uploadId) return [404, { message: `no artifact ${parsed.data.artifact}` }];
    const urls = [];
    for (const partNumber of parsed.data.partNumbers) {
      const cmd = new UploadPartCommand({
        Bucket: this.s3.bucket,
        Key: this.key(parsed.data.artifact),
        UploadId: uploadId,
        PartNumber: partNumber,
      });
      urls.push({ partNumber, url: await getSignedUrl(this.s3.client, cmd, { expiresIn: this.expiresIn }) });
    }
    const ms = this.claimedExpiresInMs ?? this.expiresIn * 1000;
    return [200, { urls, expiresAt: new Date(Date.now() + ms).toISOString() }];
  }

  /** Completes the artifact's multipart upload with the parts the agent reported. */
  async complete(artifact: string, parts: { partNumber: number; etag: string }[]): Promise<void> {
    await this.s3.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.s3.bucket,
        Key: this.key(artifact),
        UploadId: this.uploads.get(artifact),
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
      }),
    );
    this.uploads.delete(artifact);
  }

  async close(): Promise<void> {
    for (const [a, uploadId] of this.uploads) {
      await this.s3.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.s3.bucket, Key: this.key(a), UploadId: uploadId }))
        .catch(() => undefined);
    }
    await new Promise((r) => (this.server ? this.server.close(r) : r(undefined)));
  }
}
