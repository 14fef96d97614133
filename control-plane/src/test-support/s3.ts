import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

/**
 * A real S3 server for tests: s3rver (npm) in a child process on a random loopback port, storing
 * into a temporary directory. A child because s3rver needs `--openssl-legacy-provider` (its
 * paginated listing answers 500 without it, see /work/shared/design/environment.md).
 *
 * s3rver never checks V4 signatures; the child does for header-signed requests (a wrong secret
 * gets SignatureDoesNotMatch, as from real S3). Presigned URLs are not re-verified.
 *
 * s3rver does not implement AbortMultipartUpload (it answers 405); the child adds it (DELETE
 * ?uploadId= removes the upload's parts, without checking the signature), so code that aborts
 * uploads can be tested, and `pendingUploads` shows which uploads are still open.
 *
 * Usage:
 *   const s3 = await startS3rver({ buckets: ["backups"] });
 *   s3.endpoint            // http://127.0.0.1:<port>, use with forcePathStyle: true
 *   s3.accessKeyId / s3.secretAccessKey / s3.region
 *   await s3.listKeys("backups", "prefix/")
 *   await s3.stop()
 */

export interface S3rverHandle {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The data directory (deleted by stop()). */
  directory: string;
  /** An SDK client configured for this server (path style, checksums only when required). */
  client: S3Client;
  createBucket(name: string): Promise<void>;
  listKeys(bucket: string, prefix?: string): Promise<string[]>;
  /** An object's bytes, or null when it does not exist. */
  getObject(bucket: string, key: string): Promise<Buffer | null>;
  putObject(bucket: string, key: string, body: Buffer | string): Promise<void>;
  /** Upload ids of multipart uploads neither completed nor aborted. */
  pendingUploads(bucket: string): Promise<string[]>;
  stop(): Promise<void>;
}

const CHILD = `
const S3rver = require(process.env.S3RVER_MAIN);
const fs = require("fs");
const path = require("path");
const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: process.env.S3RVER_DIR });
server.middleware.unshift(async (ctx, next) => {
  const m = /^\\/([^/]+)\\/.+/.exec(ctx.path);
  if (ctx.method === "DELETE" && m && typeof ctx.query.uploadId === "string" && /^[0-9a-f]+$/.test(ctx.query.uploadId)) {
    const dir = path.join(server.store.getResourcePath(m[1], undefined, "uploads"), ctx.query.uploadId);
    if (!fs.existsSync(dir)) { ctx.status = 404; ctx.body = "<Error><Code>NoSuchUpload</Code></Error>"; return; }
    fs.rmSync(dir, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  return next();
});
// s3rver checks only that a V4 request's access key exists, never its signature. Real S3 refuses
// a wrong secret with SignatureDoesNotMatch, so header-signed requests are verified here with the
// SDK's own signer (presigned URLs are left to s3rver, which accepts them).
const { SignatureV4 } = require(process.env.SIGV4_MAIN);
const crypto = require("crypto");
class Sha256 {
  constructor(secret) { this.h = secret ? crypto.createHmac("sha256", secret) : crypto.createHash("sha256"); }
  update(d) { this.h.update(typeof d === "string" ? Buffer.from(d) : d); }
  digest() { return Promise.resolve(new Uint8Array(this.h.digest())); }
}
const SECRETS = { S3RVER: "S3RVER" };
server.middleware.unshift(async (ctx, next) => {
  const auth = ctx.headers.authorization;
  const m = auth && /^AWS4-HMAC-SHA256 Credential=([^/]+)\\/(\\d{8})\\/([^/]+)\\/s3\\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m || !(m[1] in SECRETS)) return next();
  const [, accessKeyId, , region, signedHeaders, signature] = m;
  const headers = {};
  for (const h of signedHeaders.split(";")) headers[h] = ctx.headers[h];
  const rawPath = ctx.originalUrl.split("?")[0];
  const query = {};
  for (const [k, v] of Object.entries(ctx.query)) query[k] = v;
  const amzDate = ctx.headers["x-amz-date"];
  const date = new Date(amzDate.replace(/^(\\d{4})(\\d{2})(\\d{2})T(\\d{2})(\\d{2})(\\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"));
  const signer = new SignatureV4({ credentials: { accessKeyId, secretAccessKey: SECRETS[accessKeyId] }, region, service: "s3", sha256: Sha256, uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign({ method: ctx.method, protocol: "http:", hostname: ctx.hostname, path: rawPath, query, headers }, { signingDate: date });
  const expected = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization)[1];
  if (expected !== signature) {
    ctx.status = 403;
    ctx.type = "application/xml";
    ctx.body = "<?xml version=\\"1.0\\" encoding=\\"UTF-8\\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error>";
    return;
  }
  return next();
});
server.run().then(({ port }) => process.stdout.write("S3RVER_PORT=" + port + "\\n"), (err) => { console.error(err); process.exit(1); });
`;

export async function startS3rver(opts: { buckets?: string[] } = {}): Promise<S3rverHandle> {
  const directory = await mkdtemp(join(tmpdir(), "s3rver-"));
  const require = createRequire(import.meta.url);
  const child: ChildProcess = spawn(process.execPath, ["-e", CHILD], {
    env: {
      ...process.env,
      NODE_OPTIONS: "--openssl-legacy-provider",
      S3RVER_MAIN: require.resolve("s3rver"),
      SIGV4_MAIN: require.resolve("@smithy/signature-v4", { paths: [require.resolve("@aws-sdk/client-s3")] }),
      S3RVER_DIR: directory,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${stderr}`)), 20_000);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /S3RVER_PORT=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code}): ${stderr}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const region = "us-east-1";
  const accessKeyId = "S3RVER";
  const secretAccessKey = "S3RVER";
  const client = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const handle: S3rverHandle = {
    endpoint,
    region,
    accessKeyId,
    secretAccessKey,
    directory,
    client,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async listKeys(bucket, prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async getObject(bucket, key) {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from((await out.Body?.transformToByteArray()) ?? []);
      } catch (err) {
        if ((err as { name?: string }).name === "NoSuchKey") return null;
        throw err;
      }
    },
    async putObject(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async pendingUploads(bucket) {
      try {
        return (await readdir(join(directory, bucket, "._S3rver_uploads"))).sort();
      } catch {
        return [];
      }
    },
    async stop() {
      client.destroy();
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
  for (const b of opts.buckets ?? []) await handle.createBucket(b);
  return handle;
}
