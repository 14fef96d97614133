/**
 * SupaManager's own database lints (docs/studio-pages.md, ADR 0027): one SQL statement that reads
 * PostgreSQL's catalogs and answers one row per finding in the shape of Studio's `Lint` (name,
 * title, level, facing, categories, description, detail, remediation, metadata, cache_key). The
 * lint names are the ones Studio knows (Supabase's database linter), so its Advisors pages show
 * their own titles and links; the SQL and wording are ours.
 *
 * Only catalog reads: it runs as the read-only role for read_only members. Schemas owned by
 * PostgreSQL or by Supabase's services are never linted (their owners decide their design).
 */

/** Schemas that belong to PostgreSQL or to a Supabase service, never to the app developer. */
export const SYSTEM_SCHEMAS = [
  "pg_catalog",
  "information_schema",
  "pg_toast",
  "auth",
  "storage",
  "realtime",
  "_realtime",
  "vault",
  "extensions",
  "graphql",
  "graphql_public",
  "net",
  "cron",
  "pgsodium",
  "pgsodium_masks",
  "pgbouncer",
  "pgtle",
  "pgmq",
  "supabase_functions",
  "supabase_migrations",
  "_analytics",
  "_supavisor",
] as const;

/** Where Supabase's documentation explains each lint (its database linter page). */
const DOCS = "https://supabase.com/docs/guides/database/database-linter?lint=";

/** A SQL string literal (values here are ours, never a caller's; quotes are doubled anyway). */
const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
const list = (xs: readonly string[]) => xs.map(lit).join(", ");

/**
 * The statement for a project whose Data API exposes `exposedSchemas` (PostgREST's db_schema).
 * Exposed schemas matter for the security lints: a table there is reachable with the anon key.
 */
export function lintSql(exposedSchemas: readonly string[]): string {
  const system = list(SYSTEM_SCHEMAS);
  const exposed = list(exposedSchemas.length > 0 ? exposedSchemas : ["public"]);
  // Relations a extension created (pg_depend deptype 'e') are the extension's business.
  const notExtensionOwned = (oid: string) =>
    `not exists (select 1 from pg_catalog.pg_depend d where d.objid = ${oid} and d.deptype = 'e')`;
  const userTable = (alias: string, ns: string) =>
    `${alias}.relkind in ('r', 'p') and ${ns}.nspname not in (${system}) and ${ns}.nspname not like 'pg\\_temp%' and ${ns}.nspname not like 'pg\\_toast%' and ${notExtensionOwned(`${alias}.oid`)}`;

  const finding = (f: {
    name: string;
    title: string;
    level: "ERROR" | "WARN" | "INFO";
    category: "SECURITY" | "PERFORMANCE";
    description: string;
    detail: string;
    metadata: string;
    key: string;
    docs: string;
  }) => `select ${lit(f.name)}::text as name, ${lit(f.title)}::text as title, ${lit(f.level)}::text as level,
  'EXTERNAL'::text as facing, array[${lit(f.category)}]::text[] as categories, ${lit(f.description)}::text as description,
  ${f.detail} as detail, ${lit(DOCS + f.docs)}::text as remediation, ${f.metadata} as metadata,
  ${lit(`${f.name}_`)} || ${f.key} as cache_key`;

  const tableMeta = (ns: string, rel: string) =>
    `jsonb_build_object('schema', ${ns}.nspname, 'name', ${rel}.relname, 'type', 'table')`;

  const parts = [
    // 1. A table the Data API exposes without row level security: anyone with the anon key reads and writes it.
    `${finding({
      name: "rls_disabled_in_public",
      title: "RLS Disabled in Public",
      level: "ERROR",
      category: "SECURITY",
      description:
        "A table in a schema the Data API exposes has row level security turned off, so anyone with the project's anon key can read and change every row.",
      detail: `format('Table %I.%I is exposed through the Data API and row level security is not enabled on it.', n.nspname, c.relname)`,
      metadata: tableMeta("n", "c"),
      key: `n.nspname || '_' || c.relname`,
      docs: "0013_rls_disabled_in_public",
    })}
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where ${userTable("c", "n")} and n.nspname in (${exposed}) and not c.relrowsecurity`,

    // 2. Policies written but never enforced.
    `${finding({
      name: "policy_exists_rls_disabled",
      title: "Policy Exists RLS Disabled",
      level: "ERROR",
      category: "SECURITY",
      description:
        "A table has row level security policies, but row level security is not enabled on it, so the policies are not applied.",
      detail: `format('Table %I.%I has the policies %s, but row level security is disabled, so none of them applies.', n.nspname, c.relname, string_agg(quote_ident(p.polname), ', ' order by p.polname))`,
      metadata: tableMeta("n", "c"),
      key: `n.nspname || '_' || c.relname`,
      docs: "0007_policy_exists_rls_disabled",
    })}
from pg_catalog.pg_policy p join pg_catalog.pg_class c on c.oid = p.polrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where ${userTable("c", "n")} and not c.relrowsecurity
group by n.nspname, c.relname, c.oid`,

    // 3. RLS on, no policy: every query through the Data API sees no rows (often a forgotten policy).
    `${finding({
      name: "rls_enabled_no_policy",
      title: "RLS Enabled No Policy",
      level: "INFO",
      category: "SECURITY",
      description:
        "A table has row level security enabled but no policy, so the Data API's roles can neither read nor write any of its rows.",
      detail: `format('Table %I.%I has row level security enabled, but no policies exist for it.', n.nspname, c.relname)`,
      metadata: tableMeta("n", "c"),
      key: `n.nspname || '_' || c.relname`,
      docs: "0008_rls_enabled_no_policy",
    })}
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where ${userTable("c", "n")} and c.relrowsecurity
  and not exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid)`,

    // 4. auth.uid() & co. called per row: PostgreSQL evaluates a bare call for every row; wrapped in
    //    a sub-select it becomes an init plan evaluated once per statement.
    `${finding({
      name: "auth_rls_initplan",
      title: "Auth RLS Initialization Plan",
      level: "WARN",
      category: "PERFORMANCE",
      description:
        "A row level security policy calls auth.uid(), auth.jwt(), auth.role(), auth.email() or current_setting() directly, so PostgreSQL evaluates the call once per row instead of once per query.",
      detail: `format('Table %I.%I has the row level security policy %I, which calls %s for each row. Write (select %s) instead, so it is evaluated once per query.', n.nspname, c.relname, p.polname, substring(e.expr from '((?:auth\\.(?:uid|jwt|role|email)|current_setting)\\([^)]*\\))'), substring(e.expr from '((?:auth\\.(?:uid|jwt|role|email)|current_setting)\\([^)]*\\))'))`,
      metadata: tableMeta("n", "c"),
      key: `n.nspname || '_' || c.relname || '_' || p.polname`,
      docs: "0003_auth_rls_initplan",
    })}
from pg_catalog.pg_policy p join pg_catalog.pg_class c on c.oid = p.polrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join lateral (select coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' ' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') as expr) e
where ${userTable("c", "n")} and c.relrowsecurity
  -- a call that is not the direct target of a sub-select (pg_get_expr writes "(SELECT auth.uid() AS uid)")
  and regexp_replace(e.expr, '\\(\\s*select\\s+(auth\\.(uid|jwt|role|email)|current_setting)\\(', '', 'gi') ~* '(auth\\.(uid|jwt|role|email)|current_setting)\\('`,

    // 5. A foreign key whose columns lead no index: deletes/updates on the referenced table scan this one.
    `${finding({
      name: "unindexed_foreign_keys",
      title: "Unindexed foreign keys",
      level: "INFO",
      category: "PERFORMANCE",
      description:
        "A foreign key has no index that starts with its columns, so joins on it and changes to the referenced rows scan the whole table.",
      detail: `format('Table %I.%I has the foreign key %I without an index covering its columns.', n.nspname, c.relname, k.conname)`,
      metadata: `jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table', 'fkey_name', k.conname, 'fkey_columns', to_jsonb(k.conkey))`,
      key: `n.nspname || '_' || c.relname || '_' || k.conname`,
      docs: "0001_unindexed_foreign_keys",
    })}
from pg_catalog.pg_constraint k join pg_catalog.pg_class c on c.oid = k.conrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where k.contype = 'f' and ${userTable("c", "n")}
  and not exists (
    select 1 from pg_catalog.pg_index i
    where i.indrelid = k.conrelid and i.indisvalid
      and (string_to_array(i.indkey::text, ' ')::smallint[])[1:cardinality(k.conkey)] operator(pg_catalog.@>) k.conkey
      and (string_to_array(i.indkey::text, ' ')::smallint[])[1:cardinality(k.conkey)] operator(pg_catalog.<@) k.conkey
  )`,

    // 6. Two or more indexes with the same definition: each write maintains all of them for nothing.
    `${finding({
      name: "duplicate_index",
      title: "Duplicate Index",
      level: "WARN",
      category: "PERFORMANCE",
      description:
        "A table has several indexes with the same definition; all but one cost write time and space without speeding up any query.",
      detail: `format('Table %I.%I has identical indexes %s. Drop all of them but one.', n.nspname, c.relname, string_agg(quote_ident(ic.relname), ', ' order by ic.relname))`,
      metadata: `jsonb_build_object('schema', n.nspname, 'name', c.relname, 'type', 'table', 'indexes', jsonb_agg(ic.relname order by ic.relname))`,
      key: `n.nspname || '_' || c.relname || '_' || string_agg(ic.relname, '_' order by ic.relname)`,
      docs: "0009_duplicate_index",
    })}
from pg_catalog.pg_index i join pg_catalog.pg_class c on c.oid = i.indrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_class ic on ic.oid = i.indexrelid
where ${userTable("c", "n")}
group by n.nspname, c.relname, c.oid, i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
  coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), ''),
  (select a.amname from pg_catalog.pg_am a where a.oid = ic.relam)
having count(*) > 1`,

    // 7. No primary key: rows cannot be addressed one by one (the table editor cannot edit them either).
    `${finding({
      name: "no_primary_key",
      title: "No Primary Key",
      level: "INFO",
      category: "PERFORMANCE",
      description:
        "A table has no primary key, so its rows cannot be told apart reliably: replication, editing single rows and many tools depend on one.",
      detail: `format('Table %I.%I has no primary key.', n.nspname, c.relname)`,
      metadata: tableMeta("n", "c"),
      key: `n.nspname || '_' || c.relname`,
      docs: "0004_no_primary_key",
    })}
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where ${userTable("c", "n")} and c.relkind = 'r'
  and not exists (select 1 from pg_catalog.pg_index i where i.indrelid = c.oid and i.indisprimary)`,

    // 8. A function whose search_path is whatever the caller set: a caller can make it resolve
    //    names to objects of their own (worst with SECURITY DEFINER).
    `${finding({
      name: "function_search_path_mutable",
      title: "Function Search Path Mutable",
      level: "WARN",
      category: "SECURITY",
      description:
        "A function does not set its own search_path, so the objects it names depend on the caller's search_path.",
      detail: `format('Function %I.%I has a search_path that depends on the caller; set it with ALTER FUNCTION ... SET search_path = ''''.', n.nspname, f.proname)`,
      metadata: `jsonb_build_object('schema', n.nspname, 'name', f.proname, 'type', 'function')`,
      key: `n.nspname || '_' || f.proname || '_' || md5(pg_catalog.pg_get_function_identity_arguments(f.oid))`,
      docs: "0011_function_search_path_mutable",
    })}
from pg_catalog.pg_proc f join pg_catalog.pg_namespace n on n.oid = f.pronamespace
where n.nspname not in (${system}) and n.nspname not like 'pg\\_temp%' and f.prokind in ('f', 'p')
  and ${notExtensionOwned("f.oid")}
  and not exists (select 1 from unnest(coalesce(f.proconfig, '{}'::text[])) cfg where cfg like 'search\\_path=%')`,

    // 9. Extensions installed into an exposed schema put their objects into the Data API.
    `${finding({
      name: "extension_in_public",
      title: "Extension in Public",
      level: "WARN",
      category: "SECURITY",
      description:
        "An extension is installed in a schema the Data API exposes, so its functions and tables become part of the public API.",
      detail: `format('Extension %I is installed in the exposed schema %I. Move it to another schema (for example extensions).', x.extname, n.nspname)`,
      metadata: `jsonb_build_object('schema', n.nspname, 'name', x.extname, 'type', 'extension')`,
      key: `n.nspname || '_' || x.extname`,
      docs: "0014_extension_in_public",
    })}
from pg_catalog.pg_extension x join pg_catalog.pg_namespace n on n.oid = x.extnamespace
where n.nspname in (${exposed}) and x.extname not in ('plpgsql')`,
  ];
  return `${parts.map((p) => `(${p})`).join("\nunion all\n")}\norder by 1, 10;`;
}
