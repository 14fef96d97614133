import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rm, statfs } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Job, RestoreJobParams, RestoreJobResult } from "@supamanager/shared";
import {
  type BackupDeps,
  describeSource,
  keyOf,
  parseJob,
  requireExec,
  restoreCommand,
  stderrDetail,
  sweepOrphans,
} from "./common.js";
import { DecryptStream } from "./crypto.js";
import { ExecOutput } from "./exec-output.js";

/** Where restores keep downloaded artifacts while they are verified and applied. */
export function restoreTmpDir(dataDir: string): string {
  return join(dataDir, "restore-tmp");
}

/** Leftovers of a restore interrupted by a crash; called when the agent starts. */
export async function cleanRestoreTmp(dataDir: string): Promise<void> {
  const dir = restoreTmpDir(dataDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) await rm(join(dir, n), { force: true, recursive: true });
}

type RestoreArtifact = RestoreJobParams["artifacts"][number];

/**
 * The `restore` job, in two phases so that a bad backup never touches the project:
 * 1. download every artifact from its presigned GET URL into `<dataDir>/restore-tmp/` (files
 *    0600, the directory 0700), hashing as it goes; a size or SHA-256 mismatch, an HTTP error, or
 *    (when encrypted) a record that fails authentication fails the job here;
 * 2. stream each file — decrypted — into its command's stdin inside the service container:
 *    `pg_restore --single-transaction` (a failure rolls back and leaves the old data) or `tar -x`.
 * The files are removed afterwards, whatever happened. Disk use: the sum of the artifacts' sizes.
 */
export async function runRestore(job: Job, deps: BackupDeps): Promise<RestoreJobResult> {
  const { ref, params } = parseJob(job, RestoreJobParams, "restore");
  const exec = requireExec(deps);
  const key = keyOf(params.encryption);
  const log = deps.logger.child({ jobId: job.jobId, ref, backupId: params.backupId });
  const dir = restoreTmpDir(deps.dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const needed = params.artifacts.reduce((sum, a) => sum + a.sizeBytes, 0);
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed + 64 * 1024 * 1024) {
    throw new Error(
      `not enough disk space in the agent's data directory to restore: ${needed} bytes needed (plus 64 MiB), ${free} free`,
    );
  }
  const files: string[] = [];
  try {
    for (const artifact of params.artifacts) {
      const file = join(dir, `${randomBytes(8).toString("hex")}-${artifact.name}`);
      files.push(file);
      await download(artifact, file, deps);
      if (key) await checkDecrypts(file, key, artifact.name);
    }
    log.info("artifacts downloaded and verified", { artifacts: params.artifacts.length, bytes: needed });
    for (const [i, artifact] of params.artifacts.entries()) {
      const started = Date.now();
      // pg_restore --clean would wait forever for the locks of a dead agent's pg_dump.
      await sweepOrphans(exec, ref, artifact.source, log);
      await apply(ref, artifact, files[i] as string, key, exec);
      log.info("artifact restored", { artifact: artifact.name, bytes: artifact.sizeBytes, ms: Date.now() - started });
    }
  } finally {
    for (const f of files) await rm(f, { force: true });
  }
  return RestoreJobResult.parse({ artifacts: params.artifacts.map((a) => ({ name: a.name, sizeBytes: a.sizeBytes })) });
}

/** Passes bytes through while hashing and counting them; refuses more than `limit`. */
class Measure extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      cb(new Error(`is larger than the ${this.limit} bytes recorded for it`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

async function download(artifact: RestoreArtifact, file: string, deps: BackupDeps): Promise<void> {
  const label = `artifact ${artifact.name}`;
  let res: Response;
  try {
    res = await (deps.fetch ?? fetch)(artifact.url, { signal: AbortSignal.timeout(60 * 60_000) });
  } catch (err) {
    // Never the URL: it carries a signature.
    throw new Error(`cannot download ${label} from object storage: ${(err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    const why =
      res.status === 404
        ? "it does not exist"
        : res.status === 403
          ? "access denied (the URL may have expired)"
          : `HTTP ${res.status}`;
    throw new Error(`cannot download ${label} from object storage: ${why} (HTTP ${res.status})`);
  }
  const handle = await open(file, "wx", 0o600);
  const measure = new Measure(artifact.sizeBytes);
  try {
    await pipeline(
      Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]),
      measure,
      createWriteStream("", { fd: handle.fd, autoClose: false }),
    );
  } catch (err) {
    throw new Error(`download of ${label} failed: ${(err as Error).message}`);
  } finally {
    await handle.close();
  }
  if (measure.bytes !== artifact.sizeBytes) {
    throw new Error(`${label} is ${measure.bytes} bytes, but the backup recorded ${artifact.sizeBytes}: not restoring`);
  }
  const sha = measure.hash.digest("hex");
  if (sha !== artifact.sha256) {
    throw new Error(`${label} does not match the SHA-256 recorded for it (corrupted in storage?): not restoring`);
  }
}

/** Decrypts the whole file to nowhere: a wrong key fails the job before the database is touched. */
async function checkDecrypts(file: string, key: Buffer, name: string): Promise<void> {
  try {
    await pipeline(
      createReadStream(file),
      new DecryptStream(key),
      new Writable({
        write(_c, _e, cb) {
          cb();
        },
      }),
    );
  } catch (err) {
    throw new Error(`artifact ${name} cannot be decrypted: ${(err as Error).message}: not restoring`);
  }
}

async function apply(
  ref: string,
  artifact: RestoreArtifact,
  file: string,
  key: Buffer | null,
  exec: NonNullable<BackupDeps["exec"]>,
): Promise<void> {
  const what = `restore of ${artifact.name} (${describeSource(artifact.source)})`;
  const session = await exec(ref, artifact.source.service, restoreCommand(artifact.source), { stdin: true });
  const output = new ExecOutput();
  const stdout: Buffer[] = [];
  let stdoutBytes = 0;
  const reading = pipeline(
    session.stream,
    output,
    new Writable({
      write(c: Buffer, _e, cb) {
        // pg_restore and tar -x print nothing on stdout; keep a little in case they do.
        if (stdoutBytes < 4096) stdout.push(Buffer.from(c.subarray(0, 4096 - stdoutBytes)));
        stdoutBytes += c.length;
        cb();
      },
    }),
  );
  const source = createReadStream(file);
  let stopped = false;
  const writing = (
    key ? pipeline(source, new DecryptStream(key), session.stream) : pipeline(source, session.stream)
  ).then(
    () => null,
    (err: Error) => (stopped ? null : err),
  );
  const readError = await reading.then(
    () => null,
    (err: Error) => err,
  );
  // Docker ends the output when the command exits: input it has not read by then never will be
  // (pg_restore stops at its first error), and writing on would wait forever.
  stopped = true;
  source.destroy();
  session.stream.destroy();
  const writeError = await writing;
  const code = await session.exitCode();
  const detail = stderrDetail(`${output.stderrTail()}\n${Buffer.concat(stdout).toString("utf8")}`, []);
  if (code !== 0) {
    const rolledBack =
      artifact.source.kind === "pg_dump" ? "; the restore ran in one transaction, so the database is unchanged" : "";
    throw new Error(`${what} failed (exit ${code ?? "unknown"})${rolledBack}${detail}`);
  }
  if (writeError) throw new Error(`${what} failed while sending the data: ${writeError.message}`);
  if (readError) throw new Error(`${what} failed: ${readError.message}`);
}
