import Docker from "dockerode";
import type { BackupDeps } from "../backups/common.js";
import { registerBackupJobs } from "../backups/index.js";
import type { Jobs } from "../jobs/jobs.js";
import { PROJECT_LABEL, SERVICE_LABEL } from "../runtime/docker.js";
import { run } from "../runtime/exec.js";
import { execInService } from "../runtime/service-exec.js";
import type { FakeUploadUrlServer } from "./s3.js";

/**
 * What the agent's backup tests and benchmark run on: a real PostgreSQL container as a project's
 * `db` service, and the agent's backup and restore jobs on the real Docker engine, uploading to
 * s3rver through a FakeUploadUrlServer (./s3.ts).
 */

/**
 * Starts the local PostgreSQL test image (images/manifest.local.json) as container `name`,
 * labelled as service `db` of the Compose project `ref` so that the agent's service exec finds it
 * as it finds a project's database, with a database `app`. Resolves once the image's health check
 * passes; remove it with `docker rm -f -v <name>`.
 */
export async function startPostgresService(opts: {
  name: string;
  ref: string;
  image: string;
  password: string;
  healthyWithinMs?: number;
}): Promise<void> {
  await run("docker", [
    "run",
    "-d",
    "--name",
    opts.name,
    "--label",
    `${PROJECT_LABEL}=${opts.ref}`,
    "--label",
    `${SERVICE_LABEL}=db`,
    "-e",
    `POSTGRES_PASSWORD=${opts.password}`,
    "-e",
    "POSTGRES_DB=app",
    opts.image,
  ]);
  const deadline = Date.now() + (opts.healthyWithinMs ?? 60_000);
  while ((await run("docker", ["inspect", "-f", "{{.State.Health.Status}}", opts.name])).trim() !== "healthy") {
    if (Date.now() > deadline) throw new Error("postgres did not become healthy");
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Runs `sql` with psql as postgres in container `name` (stops at the first error); the trimmed output. */
export async function psqlIn(
  name: string,
  sql: string,
  opts: { db?: string; timeoutMs?: number } = {},
): Promise<string> {
  const args = ["exec", name, "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", opts.db ?? "app", "-tAc", sql];
  return (await run("docker", args, opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {})).trim();
}

/**
 * Registers the agent's backup and restore jobs on `jobs`, running commands in containers through
 * the Docker engine and asking for upload URLs from the fake control plane `current()` returns
 * when a job starts (each job gets its own multipart uploads). `deps` adds or overrides the rest.
 */
export function registerDockerBackupJobs(
  jobs: Jobs,
  current: () => FakeUploadUrlServer | null,
  deps: Pick<BackupDeps, "dataDir" | "logger"> & Partial<BackupDeps>,
): void {
  const docker = new Docker();
  registerBackupJobs(jobs, {
    exec: (r, service, cmd, opts) => execInService(docker, r, service, cmd, opts),
    get controlPlaneUrl() {
      return current()?.url ?? "http://127.0.0.1:1";
    },
    get credential() {
      return current()?.credential ?? "none";
    },
    ...deps,
  });
}
