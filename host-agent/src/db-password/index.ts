import { DB_PASSWORD_JOB_KIND, DbPasswordJobParams, type DbPasswordJobResult, type Job } from "@supamanager/shared";
import { conninfo, type ExecInService, parseJob } from "../backups/common.js";
import { ExecOutput } from "../backups/exec-output.js";
import type { Jobs } from "../jobs/jobs.js";
import { scrubTail } from "../runtime/exec.js";

/** Longest a password change may take (it is one short psql session). */
const TIMEOUT_MS = 60_000;
const APPLICATION_NAME = "supamanager-db-password";

/**
 * The SQL one psql session runs: alter each listed role that exists to the verifier, in one
 * transaction, and print the names changed. The identifiers and the verifier were checked by
 * the job's schema (lowercase identifiers; a verifier of base64 and `$:` only), and format()
 * quotes them again, so nothing here can break out of its literal.
 */
export function passwordSql(params: DbPasswordJobParams): string {
  const roles = params.roles.map((r) => `'${r}'`).join(", ");
  return [
    "\\set ON_ERROR_STOP 1",
    "begin;",
    `select format('alter role %I with password %L', rolname, '${params.verifier}') from pg_roles where rolname = any (array[${roles}]) order by rolname \\gexec`,
    `\\pset tuples_only on`,
    `\\pset format unaligned`,
    `select 'changed:' || rolname from pg_roles where rolname = any (array[${roles}]) order by rolname;`,
    "commit;",
    "",
  ].join("\n");
}

/** Runs the `db-password` job: psql as the superuser over the db container's local socket. */
export async function runDbPassword(job: Job, exec: ExecInService): Promise<DbPasswordJobResult> {
  const { ref, params } = parseJob(job, DbPasswordJobParams, "db-password");
  const cmd = [
    "psql",
    "--no-password",
    "--quiet",
    "-U",
    params.user,
    "-d",
    conninfo(params.database, APPLICATION_NAME),
  ];
  const session = await exec(ref, params.service, cmd, { stdin: true });
  const chunks: Buffer[] = [];
  const out = new ExecOutput();
  out.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    out.on("end", resolve);
    out.on("error", reject);
    session.stream.on("error", reject);
  });
  session.stream.pipe(out);
  session.stream.end(passwordSql(params));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`psql did not finish within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    session.stream.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const code = await session.exitCode();
  const stdout = Buffer.concat(chunks).toString("utf8");
  if (code !== 0) {
    // The verifier is not the password, but it is still kept out of error messages.
    const detail = scrubTail(out.stderrTail() || stdout, [params.verifier]);
    throw new Error(`psql exited with ${code ?? "no exit code"}: ${detail}`);
  }
  const roles = stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("changed:"))
    .map((l) => l.slice("changed:".length));
  if (roles.length === 0) throw new Error(`none of the roles ${params.roles.join(", ")} exists in the database`);
  return { roles };
}

/** Registers the `db-password` job kind. */
export function registerDbPasswordJob(jobs: Jobs, exec: ExecInService | undefined): void {
  jobs.register(DB_PASSWORD_JOB_KIND, async (job) => {
    if (!exec) throw new Error("this agent's container runtime cannot run commands in containers");
    return runDbPassword(job, exec);
  });
}
