import { type DatabaseFacts, DatabaseFacts as DatabaseFactsSchema } from "@supamanager/shared";
import { conninfo, type ExecInService } from "../backups/common.js";
import { ExecOutput } from "../backups/exec-output.js";
import { scrubTail } from "../runtime/exec.js";

/**
 * What an upgrade checks before and after (docs/upgrades.md, "The checks"): the exact row count
 * of every table outside PostgreSQL's own schemas, the extensions, and the views and functions
 * of the schemas users own. Read by one psql session as the release's superuser over the
 * database container's local socket.
 */

const APPLICATION_NAME = "supamanager-upgrade";
/** Counting every row of a large database takes a while; far more than this means something is stuck. */
const FACTS_TIMEOUT_MS = 30 * 60_000;

const SYSTEM = `n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'`;

/**
 * Schemas a release's own services create and migrate (Supabase's auth, storage, realtime, …):
 * their views and functions may legitimately change between releases, so only the row counts of
 * their tables are compared.
 */
export const MANAGED_SCHEMAS = [
  "auth",
  "storage",
  "realtime",
  "_realtime",
  "supabase_functions",
  "supabase_migrations",
  "extensions",
  "graphql",
  "graphql_public",
  "vault",
  "pgsodium",
  "pgsodium_masks",
  "net",
  "cron",
  "_analytics",
  "_supavisor",
  "pgbouncer",
];

/** Tables where a release's services record their own migrations: they may gain rows. */
const MIGRATION_TABLE = /^(schema_migrations|migrations)$/;

const notExtensionMember = (classid: string, oid: string) =>
  `not exists (select 1 from pg_depend d where d.classid = '${classid}'::regclass and d.objid = ${oid} and d.deptype = 'e')`;
const userSchema = `n.nspname <> all (array[${MANAGED_SCHEMAS.map((s) => `'${s}'`).join(", ")}])`;

/** One statement printing the facts as one line of JSON. Counts are exact (count(*)), not estimates. */
export const FACTS_SQL = `select json_build_object(
  'tables', coalesce((
    select json_object_agg(n.nspname || '.' || c.relname,
      (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and ${SYSTEM}), '{}'::json),
  'extensions', coalesce((select json_agg(extname order by extname) from pg_extension), '[]'::json),
  'views', coalesce((
    select json_agg(n.nspname || '.' || c.relname order by n.nspname, c.relname)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('v', 'm') and ${SYSTEM} and ${userSchema} and ${notExtensionMember("pg_class", "c.oid")}), '[]'::json),
  'functions', coalesce((
    select json_agg(f order by f) from (
      select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as f
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where ${SYSTEM} and ${userSchema} and ${notExtensionMember("pg_proc", "p.oid")}) fs), '[]'::json)
)::text;`;

export interface FactsTarget {
  ref: string;
  service: string;
  user: string;
  database: string;
}

/** Read the facts of the project's running database. */
export async function readFacts(exec: ExecInService, t: FactsTarget): Promise<DatabaseFacts> {
  const stdout = await psql(exec, t, FACTS_SQL, FACTS_TIMEOUT_MS);
  const line = stdout
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith("{"));
  if (!line) throw new Error("the database facts query printed nothing");
  const parsed = DatabaseFactsSchema.safeParse(JSON.parse(line));
  if (!parsed.success) throw new Error(`the database facts were not understood: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/**
 * What differs between the facts before and after, as sentences (empty: the same). Every table
 * must still be there with exactly as many rows (migration-record tables may gain rows); every
 * extension, view and function must still be there.
 */
export function compareFacts(before: DatabaseFacts, after: DatabaseFacts): string[] {
  const problems: string[] = [];
  for (const [table, rows] of Object.entries(before.tables)) {
    const now = after.tables[table];
    const name = table.split(".").at(-1) ?? table;
    if (now === undefined) problems.push(`table ${table} is missing`);
    else if (now !== rows && !(MIGRATION_TABLE.test(name) && now > rows)) {
      problems.push(`table ${table} has ${now} rows instead of ${rows}`);
    }
  }
  const missing = (what: string, was: string[], is: string[]) => {
    const have = new Set(is);
    for (const x of was) if (!have.has(x)) problems.push(`${what} ${x} is missing`);
  };
  missing("extension", before.extensions, after.extensions);
  missing("view", before.views, after.views);
  missing("function", before.functions, after.functions);
  return problems;
}

/** Summarize problems for an error message (the first few, then how many more). */
export function describeProblems(problems: string[], max = 8): string {
  const shown = problems.slice(0, max).join("; ");
  return problems.length > max ? `${shown}; and ${problems.length - max} more` : shown;
}

async function psql(exec: ExecInService, t: FactsTarget, sql: string, timeoutMs: number): Promise<string> {
  const cmd = [
    "psql",
    "--no-password",
    "--no-psqlrc",
    "--quiet",
    "--tuples-only",
    "--no-align",
    "-v",
    "ON_ERROR_STOP=1",
    "-U",
    t.user,
    "-d",
    conninfo(t.database, APPLICATION_NAME),
  ];
  const session = await exec(t.ref, t.service, cmd, { stdin: true });
  const chunks: Buffer[] = [];
  const out = new ExecOutput();
  out.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    out.on("end", resolve);
    out.on("error", reject);
    session.stream.on("error", reject);
  });
  session.stream.pipe(out);
  session.stream.end(`${sql}\n`);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`psql did not finish within ${timeoutMs} ms`)), timeoutMs);
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
  if (code !== 0)
    throw new Error(`psql exited with ${code ?? "no exit code"}: ${scrubTail(out.stderrTail() || stdout)}`);
  return stdout;
}
