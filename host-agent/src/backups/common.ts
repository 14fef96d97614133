import { pipeline } from "node:stream/promises";
import type { ArtifactSource, Encryption, Job } from "@supamanager/shared";
import type { z } from "zod";
import type { Logger } from "../log.js";
import { scrubTail } from "../runtime/exec.js";
import type { ServiceExec } from "../runtime/types.js";
import { ExecOutput } from "./exec-output.js";
import type { Fetch, RetryPolicy } from "./parts.js";

export type ExecInService = (
  ref: string,
  service: string,
  cmd: readonly string[],
  opts: { stdin: boolean },
) => Promise<ServiceExec>;

/** What the backup and restore handlers need from the agent. */
export interface BackupDeps {
  /** Runs a command in a project's service container; absent when the runtime cannot. */
  exec: ExecInService | undefined;
  /** The control plane's base URL (http/https) and this host's credential, for upload URLs. */
  controlPlaneUrl: string;
  credential: string;
  /** The agent's data directory: restores download into `<dataDir>/restore-tmp/`. */
  dataDir: string;
  logger: Logger;
  fetch?: Fetch;
  retry?: RetryPolicy;
  /** Upload URLs asked for per request. */
  urlBatch?: number;
  /** How long pg_dump waits for its table locks before failing (DEFAULT_LOCK_WAIT_MS). */
  lockWaitMs?: number;
}

/**
 * pg_dump takes a share lock on every table it dumps; a session holding an exclusive lock (a
 * long migration, a forgotten transaction) would make it wait forever — and, since a project's
 * jobs run one at a time, every later backup and restore of the project behind it. Ten minutes,
 * then the backup fails with pg_dump's message (PostgreSQL 15: "canceling statement due to
 * statement timeout … LOCK TABLE … IN ACCESS SHARE MODE").
 */
export const DEFAULT_LOCK_WAIT_MS = 10 * 60 * 1000;

/** The job's project and its params, or a clear error for a bad job. */
export function parseJob<T extends z.ZodType>(job: Job, schema: T, what: string): { ref: string; params: z.infer<T> } {
  if (!job.ref) throw new Error(`a ${what} job needs the project ref`);
  const parsed = schema.safeParse(job.params);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    throw new Error(`invalid ${what} job params: ${path}${issue?.message ?? "bad params"}`);
  }
  return { ref: job.ref, params: parsed.data };
}

export function requireExec(deps: BackupDeps): ExecInService {
  if (!deps.exec) throw new Error("this agent's container runtime cannot run commands in containers");
  return deps.exec;
}

export function keyOf(encryption: Encryption | undefined): Buffer | null {
  if (!encryption) return null;
  const key = Buffer.from(encryption.keyBase64, "base64");
  if (key.length !== 32) throw new Error("the encryption key is not 32 bytes");
  return key;
}

/**
 * The application_name of every connection the agent's backups and restores open, so the
 * connections of a killed agent can be found again (see orphanSweepCommand).
 */
export const BACKUP_APPLICATION_NAME = "supamanager-backup";

/** A libpq connection string naming the database and our application name (values quoted). */
export function conninfo(database: string, applicationName = BACKUP_APPLICATION_NAME): string {
  const quote = (v: string) => `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  return `dbname=${quote(database)} application_name=${quote(applicationName)}`;
}

/** Commands are argv arrays run by Docker directly: no shell, so no quoting of names. */
export function dumpCommand(source: ArtifactSource, lockWaitMs = DEFAULT_LOCK_WAIT_MS): string[] {
  return source.kind === "pg_dump"
    ? [
        "pg_dump",
        "--format=custom",
        "--no-password",
        `--lock-wait-timeout=${Math.max(1, Math.round(lockWaitMs))}`,
        "-U",
        source.user,
        "-d",
        conninfo(source.database),
      ]
    : ["tar", "-C", source.path, "-cf", "-", "."];
}

/**
 * Ends the backup/restore connections a previous agent process left behind. A SIGKILLed agent
 * drops its Docker exec connection, but Docker does not always end the command: a pg_dump can
 * stay blocked writing to a pipe nobody reads, holding its locks (blocking DDL and restores)
 * until someone ends it. Jobs of one project run one at a time in an agent, so every such
 * connection found when a job starts belongs to a dead process.
 */
export function orphanSweepCommand(source: Extract<ArtifactSource, { kind: "pg_dump" }>): string[] {
  return [
    "psql",
    "--no-password",
    "-X",
    "-A",
    "-t",
    "-U",
    source.user,
    "-d",
    conninfo(source.database, `${BACKUP_APPLICATION_NAME}-sweep`),
    "-c",
    `select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = '${BACKUP_APPLICATION_NAME}'`,
  ];
}

/**
 * Runs orphanSweepCommand before a pg_dump or pg_restore; best effort (a failure is logged and
 * the job goes on: the dump or restore itself reports what is really wrong).
 */
export async function sweepOrphans(
  exec: ExecInService,
  ref: string,
  source: ArtifactSource,
  log: Logger,
): Promise<number> {
  if (source.kind !== "pg_dump") return 0;
  try {
    const session = await exec(ref, source.service, orphanSweepCommand(source), { stdin: false });
    const output = new ExecOutput();
    const chunks: Buffer[] = [];
    output.on("data", (c: Buffer) => chunks.push(c));
    await pipeline(session.stream, output);
    const code = await session.exitCode();
    const ended = Number.parseInt(Buffer.concat(chunks).toString("utf8").trim(), 10);
    if (code !== 0 || !Number.isFinite(ended)) {
      log.warn("could not look for connections of an earlier agent", { code, stderr: output.stderrTail().slice(-500) });
      return 0;
    }
    if (ended > 0) log.warn("ended backup connections left by an earlier agent process", { ended });
    return ended;
  } catch (err) {
    log.warn("could not look for connections of an earlier agent", { err });
    return 0;
  }
}

export function restoreCommand(source: ArtifactSource): string[] {
  return source.kind === "pg_dump"
    ? [
        "pg_restore",
        "--single-transaction",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-password",
        "-U",
        source.user,
        "-d",
        conninfo(source.database),
      ]
    : ["tar", "-C", source.path, "-xf", "-"];
}

export function describeSource(source: ArtifactSource): string {
  return source.kind === "pg_dump"
    ? `pg_dump of database "${source.database}" (service ${source.service})`
    : `tar of ${source.path} (service ${source.service})`;
}

/** stderr is scrubbed of the secrets we know of and cut to its tail before it reaches a result. */
export function stderrDetail(stderr: string, secrets: readonly string[]): string {
  const tail = scrubTail(stderr, secrets, 1500);
  return tail ? `: ${tail}` : "";
}

/** One job at a time per project: a restore never overlaps a backup of the same database. */
export class PerProjectLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(ref: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(ref) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(ref, tail);
    void tail.then(() => {
      if (this.tails.get(ref) === tail) this.tails.delete(ref);
    });
    return next;
  }
}
