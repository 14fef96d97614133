import { Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ExecOutput } from "../backups/exec-output.js";
import type { Logger } from "../log.js";
import { scrubTail } from "../runtime/exec.js";
import type { ServiceExec } from "../runtime/types.js";

/**
 * The data step of an upgrade across PostgreSQL majors (ADR 0038): a logical copy from the old
 * server into a freshly initialised new one, streamed between the two containers by the agent —
 * nothing is written to disk on the host, and the old data directory is only read, so it stays a
 * valid rollback target whatever happens here.
 *
 * 1. both servers answer and the new major is not older; the old cluster has no tablespace of
 *    its own (a container's tablespace directory would not exist in the new one);
 * 2. roles: `pg_dumpall --globals-only` of the old server, applied in one transaction, without
 *    the `CREATE ROLE` of roles the new cluster already has (its bootstrap superuser, roles its
 *    init scripts made): their `ALTER ROLE` still sets attributes and the password hash;
 * 3. every database that accepts connections (not the templates): dropped from the new cluster
 *    if there (an init script may have made it), then `pg_dump --format=custom --compress=0` in
 *    the old container piped into `pg_restore --create --exit-on-error` in the new one. --create
 *    carries the database's own properties (owner, ACL, settings, comment);
 * 4. `vacuumdb --all --analyze-only`: a dump carries no planner statistics;
 * 5. verify: per database, the extensions, relations, functions, sequence positions and the exact
 *    row count of every table must be equal on both sides (objects of extensions are left out:
 *    an extension installs its new version's objects), and every old role must exist.
 *
 * The old server's binaries dump (the new pg_restore reads their archives); both containers need
 * a superuser reachable over the unix socket without a password (the local images' entrypoint
 * trusts local connections). Nothing else may write to the old server meanwhile: the caller
 * stops the project's stack first. On failure the new cluster is in an unknown state and must
 * be thrown away; the old one is untouched.
 */

/** Runs argv in a container named by id or name (runtime/service-exec.ts execInContainer). */
export type ContainerExec = (
  container: string,
  cmd: readonly string[],
  opts: { stdin: boolean },
) => Promise<ServiceExec>;

export type DataMovePhase = "check" | "roles" | "database" | "analyze" | "verify";

export interface DataMoveProgress {
  phase: DataMovePhase;
  /** The database being copied or verified. */
  database?: string;
  /** Its index (1-based) and the number of databases. */
  index?: number;
  count?: number;
  /** Bytes of dump streamed so far, in this database and in all. */
  databaseBytes?: number;
  totalBytes: number;
  /** The database's size on disk in the old server, for scale (a dump is usually smaller). */
  databaseSizeBytes?: number;
}

export interface MoveDataOptions {
  exec: ContainerExec;
  /** The running old-major server, holding the data. */
  oldContainer: string;
  /** The running new-major server, freshly initialised (its init scripts may have run). */
  newContainer: string;
  /** The superuser of both servers (the image's POSTGRES_USER). */
  user?: string;
  log: Logger;
  onProgress?: (p: DataMoveProgress) => void;
  /** Minimum time between progress reports while a database streams. */
  progressIntervalMs?: number;
  /** Analyze the new cluster (default true); only benchmarks turn it off to time it apart. */
  analyze?: boolean;
  signal?: AbortSignal;
}

export interface MovedDatabase {
  name: string;
  /** Size of its dump stream. */
  bytes: number;
  ms: number;
  tables: number;
  rows: number;
}

export interface MoveDataResult {
  ms: number;
  /** Bytes streamed from the old server to the new one (roles and every database). */
  bytes: number;
  fromVersion: string;
  toVersion: string;
  databases: MovedDatabase[];
  /** Where the time went: roles, the database copies, analyze, verify. */
  phasesMs: { roles: number; copy: number; analyze: number; verify: number };
}

export class DataMoveError extends Error {
  override readonly name = "DataMoveError";
}

/** What every connection of this step calls itself, to be told apart in pg_stat_activity. */
export const DATA_MOVE_APPLICATION_NAME = "supamanager-upgrade";

/** Output of one small command, kept whole; dumps never go through this. */
const CAPTURE_LIMIT = 64 * 1024 * 1024;

export async function moveDataAcrossMajors(opts: MoveDataOptions): Promise<MoveDataResult> {
  const started = Date.now();
  const user = opts.user ?? "postgres";
  const { log } = opts;
  const report = (p: DataMoveProgress) => opts.onProgress?.(p);
  const sql = (side: Side, database: string, query: string) =>
    capture(opts, side, psqlArgv(user, database, ["-A", "-t", "-c", query]), `query in the ${side} server`);

  report({ phase: "check", totalBytes: 0 });
  const [fromVersion, toVersion] = [
    (await sql("old", "postgres", VERSION_SQL)).trim(),
    (await sql("new", "postgres", VERSION_SQL)).trim(),
  ];
  const fromMajor = majorOf(fromVersion);
  const toMajor = majorOf(toVersion);
  if (toMajor < fromMajor) {
    throw new DataMoveError(
      `the new server runs PostgreSQL ${toVersion}, older than the old server's ${fromVersion}: data cannot move to an older major`,
    );
  }
  const tablespaces = lines(await sql("old", "postgres", TABLESPACES_SQL));
  if (tablespaces.length) {
    throw new DataMoveError(
      `the old server has tablespaces (${tablespaces.join(", ")}); their directories would not exist in the new container. Move their tables to pg_default first`,
    );
  }
  const databases = lines(await sql("old", "postgres", DATABASES_SQL));
  log.info("moving data across PostgreSQL majors", { from: fromVersion, to: toVersion, databases: databases.length });

  // Roles first: the databases' owners and grants refer to them.
  const rolesStarted = Date.now();
  report({ phase: "roles", totalBytes: 0 });
  const globals = await capture(
    opts,
    "old",
    ["pg_dumpall", "--globals-only", "--no-password", "-U", user, `--dbname=${conninfo("postgres")}`],
    "pg_dumpall --globals-only in the old server",
  );
  const existing = new Set(lines(await sql("new", "postgres", "select rolname from pg_roles")));
  const { script, skipped } = withoutExistingRoles(globals, existing);
  await capture(
    opts,
    "new",
    psqlArgv(user, "postgres", ["--single-transaction", "-f", "-"]),
    "applying the old server's roles to the new server",
    script,
  );
  let totalBytes = Buffer.byteLength(globals);
  const rolesMs = Date.now() - rolesStarted;
  log.info("roles copied", { ms: rolesMs, alreadyThere: skipped });

  const copyStarted = Date.now();
  const moved: MovedDatabase[] = [];
  for (const [i, name] of databases.entries()) {
    const dbStarted = Date.now();
    const sizeBytes = Number((await sql("old", "postgres", `select pg_database_size(${literal(name)})`)).trim());
    const base = { phase: "database" as const, database: name, index: i + 1, count: databases.length };
    report({ ...base, databaseBytes: 0, totalBytes, databaseSizeBytes: sizeBytes });
    // An init script of the new release may have created it; pg_restore --create makes it anew.
    await sql("new", "template1", `drop database if exists ${ident(name)} with (force)`);
    const bytes = await streamDatabase(opts, user, name, (n) =>
      report({ ...base, databaseBytes: n, totalBytes: totalBytes + n, databaseSizeBytes: sizeBytes }),
    );
    totalBytes += bytes;
    const ms = Date.now() - dbStarted;
    moved.push({ name, bytes, ms, tables: 0, rows: 0 });
    log.info("database copied", { database: name, bytes, sizeBytes, ms });
  }
  const copyMs = Date.now() - copyStarted;

  let analyzeMs = 0;
  if (opts.analyze !== false) {
    const t = Date.now();
    report({ phase: "analyze", totalBytes });
    await capture(
      opts,
      "new",
      [
        "vacuumdb",
        "--all",
        "--analyze-only",
        "--quiet",
        "--no-password",
        "-U",
        user,
        `--maintenance-db=${conninfo("postgres")}`,
      ],
      "vacuumdb --analyze-only in the new server",
    );
    analyzeMs = Date.now() - t;
    log.info("new cluster analyzed", { ms: analyzeMs });
  }

  const verifyStarted = Date.now();
  const oldRoles = lines(await sql("old", "postgres", ROLES_SQL));
  const newRoles = new Set(lines(await sql("new", "postgres", ROLES_SQL)));
  const lost = oldRoles.filter((r) => !newRoles.has(r));
  if (lost.length) throw new DataMoveError(`roles missing in the new server after the copy: ${lost.join(", ")}`);
  for (const [i, db] of moved.entries()) {
    report({ phase: "verify", database: db.name, index: i + 1, count: moved.length, totalBytes });
    const before = parseFingerprint(await sql("old", db.name, FINGERPRINT_SQL));
    const after = parseFingerprint(await sql("new", db.name, FINGERPRINT_SQL));
    const diffs = compareFingerprints(before, after);
    if (diffs.length) {
      throw new DataMoveError(
        `database "${db.name}" differs after the copy: ${diffs.slice(0, 5).join("; ")}${diffs.length > 5 ? ` (+${diffs.length - 5} more)` : ""}`,
      );
    }
    db.tables = Object.keys(before.rows).length;
    db.rows = Object.values(before.rows).reduce((a, b) => a + b, 0);
  }
  const verifyMs = Date.now() - verifyStarted;
  const ms = Date.now() - started;
  log.info("data moved and verified", {
    from: fromVersion,
    to: toVersion,
    bytes: totalBytes,
    ms,
    tables: moved.reduce((a, d) => a + d.tables, 0),
    rows: moved.reduce((a, d) => a + d.rows, 0),
  });
  return {
    ms,
    bytes: totalBytes,
    fromVersion,
    toVersion,
    databases: moved,
    phasesMs: { roles: rolesMs, copy: copyMs, analyze: analyzeMs, verify: verifyMs },
  };
}

type Side = "old" | "new";

const containerOf = (opts: MoveDataOptions, side: Side) => (side === "old" ? opts.oldContainer : opts.newContainer);

/** A libpq connection string (values quoted), so every connection carries our application name. */
export function conninfo(database: string): string {
  const quote = (v: string) => `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  return `dbname=${quote(database)} application_name=${quote(DATA_MOVE_APPLICATION_NAME)}`;
}

function psqlArgv(user: string, database: string, rest: readonly string[]): string[] {
  return ["psql", "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", conninfo(database), ...rest];
}

/** A quoted SQL identifier / string literal (names come from the old server's catalogs). */
export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;
const lines = (text: string) => text.split("\n").filter((l) => l.length > 0);

/** "15.18 (Debian 15.18-0+deb12u1)" → 15; also takes a server_version_num. */
export function majorOf(version: string): number {
  const num = /^\d{5,6}$/.test(version) ? Math.floor(Number(version) / 10000) : Number.parseInt(version, 10);
  if (!Number.isFinite(num)) throw new DataMoveError(`cannot tell the PostgreSQL major of version "${version}"`);
  return num;
}

const VERSION_SQL = "show server_version";
const TABLESPACES_SQL = "select spcname from pg_tablespace where spcname not in ('pg_default', 'pg_global')";
const DATABASES_SQL = "select datname from pg_database where datallowconn and not datistemplate order by datname";
const ROLES_SQL = "select rolname from pg_roles where rolname !~ '^pg_' order by 1";

/**
 * The `CREATE ROLE name;` lines of pg_dumpall's output (the name quoted or not, as pg_dumpall
 * writes it) whose role the new cluster already has, left out; everything else is kept as is.
 */
export function withoutExistingRoles(
  globals: string,
  existing: ReadonlySet<string>,
): { script: string; skipped: string[] } {
  const skipped: string[] = [];
  const kept = globals.split("\n").filter((line) => {
    const m = /^CREATE ROLE ("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*);$/.exec(line);
    if (!m) return true;
    const raw = m[1] as string;
    const name = raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw;
    if (!existing.has(name)) return true;
    skipped.push(name);
    return false;
  });
  return { script: kept.join("\n"), skipped };
}

/**
 * What must be equal before and after, as JSON, for one database. Objects owned by an extension
 * are left out (CREATE EXTENSION installs the new major's version of them); tables are counted
 * with ONLY (a parent's count would include its children's rows twice).
 */
export const FINGERPRINT_SQL = `with rel as (
  select c.oid, n.nspname, c.relname, c.relkind
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
    and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'
    and not exists (select 1 from pg_depend d
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
), fn as (
  select p.oid::regprocedure::text as sig
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname not in ('pg_catalog', 'information_schema')
    and not exists (select 1 from pg_depend d
                    where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
)
select json_build_object(
  'extensions', coalesce((select json_agg(extname order by extname) from pg_extension), '[]'),
  'relations', coalesce((select json_agg(format('%s %I.%I', relkind, nspname, relname)
                                         order by relkind, nspname, relname) from rel), '[]'),
  'functions', coalesce((select json_agg(sig order by sig) from fn), '[]'),
  'sequences', coalesce((select json_object_agg(format('%I.%I', s.schemaname, s.sequencename), s.last_value)
                         from pg_sequences s join rel on rel.relkind = 'S'
                           and rel.nspname = s.schemaname and rel.relname = s.sequencename), '{}'),
  'rows', coalesce((select json_object_agg(format('%I.%I', nspname, relname),
                     (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from only %I.%I', nspname, relname),
                                                          false, true, '')))[1]::text::bigint)
                    from rel where relkind = 'r'), '{}')
)::text`;

export interface Fingerprint {
  extensions: string[];
  relations: string[];
  functions: string[];
  sequences: Record<string, number | null>;
  rows: Record<string, number>;
}

function parseFingerprint(text: string): Fingerprint {
  try {
    return JSON.parse(text.trim()) as Fingerprint;
  } catch {
    throw new DataMoveError("could not read the database's object list for verification");
  }
}

/** Human-readable differences, empty when equal. */
export function compareFingerprints(before: Fingerprint, after: Fingerprint): string[] {
  const diffs: string[] = [];
  const sets = (what: string, a: string[], b: string[]) => {
    const bs = new Set(b);
    const as = new Set(a);
    for (const x of a) if (!bs.has(x)) diffs.push(`${what} ${x} is missing`);
    for (const x of b) if (!as.has(x)) diffs.push(`${what} ${x} is new`);
  };
  sets("extension", before.extensions, after.extensions);
  sets("relation", before.relations, after.relations);
  sets("function", before.functions, after.functions);
  for (const [k, v] of Object.entries(before.sequences)) {
    if (after.sequences[k] !== v)
      diffs.push(`sequence ${k} is at ${after.sequences[k] ?? "nothing"}, was ${v ?? "unused"}`);
  }
  for (const [k, v] of Object.entries(before.rows)) {
    if (after.rows[k] !== v) diffs.push(`table ${k} has ${after.rows[k] ?? "no"} rows, had ${v}`);
  }
  return diffs;
}

/** Runs a small command in one side's container and returns its stdout; fails with its stderr. */
async function capture(
  opts: MoveDataOptions,
  side: Side,
  cmd: readonly string[],
  what: string,
  input?: string,
): Promise<string> {
  opts.signal?.throwIfAborted();
  const session = await opts.exec(containerOf(opts, side), cmd, { stdin: input !== undefined });
  const output = new ExecOutput();
  const chunks: Buffer[] = [];
  let size = 0;
  const reading = pipeline(
    session.stream,
    output,
    new Writable({
      write(c: Buffer, _e, cb) {
        size += c.length;
        if (size > CAPTURE_LIMIT) return cb(new DataMoveError(`${what}: more output than expected`));
        chunks.push(Buffer.from(c));
        cb();
      },
    }),
  );
  const abort = () => session.stream.destroy(new DataMoveError(`${what}: cancelled`));
  opts.signal?.addEventListener("abort", abort, { once: true });
  try {
    if (input !== undefined) session.stream.end(input);
    const readError = await reading.then(
      () => null,
      (err: Error) => err,
    );
    const code = await session.exitCode();
    if (code !== 0) throw new DataMoveError(`${what} failed (exit ${code ?? "unknown"})${tail(output.stderrTail())}`);
    if (readError)
      throw readError instanceof DataMoveError ? readError : new DataMoveError(`${what}: ${readError.message}`);
    return Buffer.concat(chunks).toString("utf8");
  } finally {
    opts.signal?.removeEventListener("abort", abort);
  }
}

const tail = (stderr: string) => {
  const t = scrubTail(stderr, [], 1500);
  return t ? `: ${t}` : "";
};

/** Enough of pg_restore's stderr to judge every error it reports (each is a few hundred bytes). */
const RESTORE_STDERR_KEEP_BYTES = 256 * 1024;

/**
 * pg_dump carries GRANTs and REVOKEs made on PostgreSQL's own functions (the `local` release
 * revokes the replication slot functions from PUBLIC, ADR 0024). A system function whose
 * arguments changed between majors (PostgreSQL 17 added `failover` to
 * pg_create_logical_replication_slot) does not exist under its old signature in the new server,
 * so that statement fails. Nothing is lost by skipping it: the new cluster's own objects got the
 * new release's privileges when it was initialised (its init scripts), and the verification
 * compares everything else.
 *
 * Given pg_restore's stderr after it exited non-zero: the statements skipped, when every error
 * it reports is of that kind and the count matches its own total; else null (the step fails).
 */
export function tolerableRestoreErrors(stderr: string): string[] | null {
  const total = /errors ignored on restore: (\d+)/.exec(stderr);
  if (!total) return null;
  const entries = stderr.split(/^pg_restore: error: /m).slice(1);
  const skipped: string[] = [];
  for (const entry of entries) {
    if (/^errors ignored on restore/.test(entry)) continue;
    const m =
      /^could not execute query: ERROR:\s+function pg_catalog\.[^\n]* does not exist\n(?:[^\n]*\n)*?Command was: ((?:GRANT|REVOKE) [^\n]* ON FUNCTION pg_catalog\.[^\n]*;)/.exec(
        entry,
      );
    if (!m?.[1]) return null;
    skipped.push(m[1]);
  }
  return skipped.length > 0 && skipped.length === Number(total[1]) ? skipped : null;
}

/** pg_restore goes on after an error: its first one is the cause, the count says how many followed. */
function firstRestoreError(head: string, tailText: string): string {
  const first = head.split(/^(?=pg_restore: error: )/m).find((e) => e.startsWith("pg_restore: error: "));
  const count = /errors ignored on restore: (\d+)/.exec(tailText)?.[1];
  if (!first) return tail(tailText);
  return `${tail(first.slice(0, 1200))}${count ? ` (${count} errors in all)` : ""}`;
}

/** Counts bytes on their way and reports at most every `intervalMs`. */
class Meter extends Transform {
  bytes = 0;
  private last = 0;
  constructor(
    private readonly intervalMs: number,
    private readonly onBytes: (n: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    const now = Date.now();
    if (now - this.last >= this.intervalMs) {
      this.last = now;
      this.onBytes(this.bytes);
    }
    cb(null, chunk);
  }
}

/**
 * pg_dump in the old container → pg_restore in the new one, through the agent, with backpressure
 * (a slow restore pauses the dump). Returns the dump's size.
 */
async function streamDatabase(
  opts: MoveDataOptions,
  user: string,
  database: string,
  onBytes: (n: number) => void,
): Promise<number> {
  opts.signal?.throwIfAborted();
  const dumpWhat = `pg_dump of database "${database}" in the old server`;
  const restoreWhat = `pg_restore of database "${database}" into the new server`;
  const dump = await opts.exec(
    opts.oldContainer,
    ["pg_dump", "--format=custom", "--compress=0", "--no-password", "-U", user, "-d", conninfo(database)],
    { stdin: false },
  );
  let restore: ServiceExec;
  try {
    restore = await opts.exec(
      opts.newContainer,
      // Not --exit-on-error: one kind of error is expected and tolerated (see tolerableRestoreErrors);
      // any other fails the step when pg_restore ends.
      ["pg_restore", "--create", "--no-password", "-U", user, "-d", conninfo("template1")],
      { stdin: true },
    );
  } catch (err) {
    dump.stream.destroy();
    throw err;
  }
  const dumpOut = new ExecOutput(async (out) => {
    const code = await dump.exitCode();
    if (code !== 0) throw new DataMoveError(`${dumpWhat} failed (exit ${code ?? "unknown"})${tail(out.stderrTail())}`);
  });
  const restoreOut = new ExecOutput(undefined, RESTORE_STDERR_KEEP_BYTES);
  const meter = new Meter(opts.progressIntervalMs ?? 2000, onBytes);
  const abort = () => {
    dump.stream.destroy();
    restore.stream.destroy();
  };
  opts.signal?.addEventListener("abort", abort, { once: true });
  try {
    const writing = pipeline(dump.stream, dumpOut, meter, restore.stream).then(
      () => null,
      (err: Error) => err,
    );
    const reading = pipeline(
      restore.stream,
      restoreOut,
      new Writable({
        write(_c, _e, cb) {
          cb(); // pg_restore prints nothing on stdout without --verbose
        },
      }),
    ).then(
      () => null,
      (err: Error) => err,
    );
    const readError = await reading;
    // pg_restore has exited. After a success it had read to the end, so the dump is complete; else
    // what it did not read never will be, and the dump is stopped instead of waiting forever.
    const writeDone = await Promise.race([writing.then(() => true), new Promise((r) => setTimeout(r, 2000, false))]);
    if (!writeDone) dump.stream.destroy();
    const writeError = await writing;
    if (writeError instanceof DataMoveError) throw writeError;
    const code = await restore.exitCode();
    opts.signal?.throwIfAborted();
    if (code !== 0) {
      const tolerated = tolerableRestoreErrors(restoreOut.stderrTail());
      if (!tolerated) {
        throw new DataMoveError(
          `${restoreWhat} failed (exit ${code ?? "unknown"})${firstRestoreError(restoreOut.stderrHead(), restoreOut.stderrTail())}`,
        );
      }
      opts.log.warn(
        "privileges on system functions that the new PostgreSQL major no longer has were not carried over",
        {
          database,
          statements: tolerated,
        },
      );
    }
    if (writeError) throw new DataMoveError(`${dumpWhat}: the stream broke: ${writeError.message}`);
    if (readError) throw new DataMoveError(`${restoreWhat}: ${readError.message}`);
    onBytes(meter.bytes);
    return meter.bytes;
  } finally {
    opts.signal?.removeEventListener("abort", abort);
  }
}
