import { pipeline } from "node:stream/promises";
import { BackupJobParams, BackupJobResult, type Job } from "@supamanager/shared";
import {
  type BackupDeps,
  describeSource,
  dumpCommand,
  keyOf,
  parseJob,
  requireExec,
  stderrDetail,
  sweepOrphans,
} from "./common.js";
import { EncryptStream } from "./crypto.js";
import { ExecOutput } from "./exec-output.js";
import { ControlPlaneUrls, PartUploader } from "./parts.js";

/**
 * The `backup` job: each artifact is produced inside the project's service container (pg_dump or
 * tar through Docker exec) and streamed — demultiplexed, optionally encrypted, hashed, cut into
 * parts — straight to object storage through presigned UploadPart URLs. Nothing touches the
 * disk; memory is bounded by two parts (see PartUploader). The result lists what the control
 * plane needs to complete each multipart upload.
 */
export async function runBackup(job: Job, deps: BackupDeps): Promise<BackupJobResult> {
  const { ref, params } = parseJob(job, BackupJobParams, "backup");
  const exec = requireExec(deps);
  const key = keyOf(params.encryption);
  const log = deps.logger.child({ jobId: job.jobId, ref, backupId: params.backupId });
  const artifacts: BackupJobResult["artifacts"] = [];
  for (const artifact of params.artifacts) {
    const what = describeSource(artifact.source);
    const started = Date.now();
    await sweepOrphans(exec, ref, artifact.source, log);
    const session = await exec(ref, artifact.source.service, dumpCommand(artifact.source, deps.lockWaitMs), {
      stdin: false,
    });
    // The exit code is checked before the stream ends, so the last part of a failed dump is never uploaded.
    const output = new ExecOutput(async (out) => {
      const code = await session.exitCode();
      if (code !== 0) {
        throw new Error(`${what} failed (exit ${code ?? "unknown"})${stderrDetail(out.stderrTail(), [])}`);
      }
    });
    const uploader = new PartUploader({
      artifact: artifact.name,
      partSizeBytes: params.partSizeBytes,
      urls: new ControlPlaneUrls({
        controlPlaneUrl: deps.controlPlaneUrl,
        credential: deps.credential,
        jobId: job.jobId,
        artifact: artifact.name,
        ...(deps.urlBatch !== undefined ? { batch: deps.urlBatch } : {}),
        ...(deps.retry ? { retry: deps.retry } : {}),
        ...(deps.fetch ? { fetch: deps.fetch } : {}),
      }),
      ...(deps.retry ? { retry: deps.retry } : {}),
    });
    try {
      if (key) await pipeline(session.stream, output, new EncryptStream(key), uploader);
      else await pipeline(session.stream, output, uploader);
    } catch (err) {
      // A failed command is reported by the output's end check; anything else (an upload that
      // failed for good) stopped the command: destroying the exec stream ends it with SIGPIPE.
      const message = (err as Error).message;
      throw new Error(`backup of ${artifact.name} failed: ${message}`);
    }
    const stored = uploader.result();
    log.info("artifact stored", {
      artifact: artifact.name,
      bytes: stored.sizeBytes,
      parts: stored.parts.length,
      encrypted: key !== null,
      ms: Date.now() - started,
    });
    artifacts.push({ name: artifact.name, ...stored });
  }
  return BackupJobResult.parse({ artifacts });
}
