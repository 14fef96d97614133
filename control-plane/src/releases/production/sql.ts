/**
 * Database init SQL for the supabase/postgres image, written by us. The image's own
 * /docker-entrypoint-initdb.d/migrate.sh runs, on an EMPTY data directory only, every
 * `init-scripts/*.sql` as `postgres` (still a superuser then), sets supabase_admin's password,
 * then every `migrations/*.sql` as `supabase_admin`, each in filename order with psql
 * (`-v ON_ERROR_STOP=1`). Our files are mounted into those directories, named so they run after
 * the image's own scripts (which create the roles, the auth/storage schemas and so on).
 *
 * Secrets never appear in these files. psql reads them from the db container's environment
 * (`\set name \`printf '%s' "$VAR"\``) and quotes them itself (`:'name'` is a properly escaped
 * literal, `%L` in format()), so any character in a password is safe here. (The API still
 * refuses a `'` in db_pass: the image's migrate.sh interpolates $PGPASSWORD into SQL raw.)
 * Changing the password later means running the same ALTER ROLE statements again.
 */

/** `\set` a psql variable from an environment variable of the db container (no trailing newline). */
const fromEnv = (psqlVar: string, envVar: string) => `\\set ${psqlVar} \`printf '%s' "$${envVar}"\``;

/** The roles that log in with the project's database password (those that exist in the image). */
export const PASSWORD_ROLES = [
  "supabase_admin",
  "authenticator",
  "pgbouncer",
  "supabase_auth_admin",
  "supabase_storage_admin",
  "supabase_functions_admin",
  "supabase_replication_admin",
  "supabase_read_only_user",
] as const;

export const READ_ONLY_ROLE = "supamanager_read_only";

/** Seconds a token minted by auth lives; also stored as app.settings.jwt_exp. */
export const JWT_EXPIRY_SECONDS = 3600;

const roles = `-- SupaManager: every service role logs in with the project's database password.
${fromEnv("pgpass", "POSTGRES_PASSWORD")}

select format('alter role %I with password %L', r.rolname, :'pgpass')
  from pg_roles r
 where r.rolname = any (array[${PASSWORD_ROLES.map((r) => `'${r}'`).join(", ")}])
 order by r.rolname
\\gexec
`;

const jwt = `-- SupaManager: JWT settings read by SQL functions (auth.jwt(), realtime) through current_setting().
${fromEnv("jwt_secret", "JWT_SECRET")}
${fromEnv("jwt_exp", "JWT_EXP")}

alter database postgres set "app.settings.jwt_secret" to :'jwt_secret';
alter database postgres set "app.settings.jwt_exp" to :'jwt_exp';
`;

const webhooks = `-- SupaManager: database webhooks. Triggers call supabase_functions.http_request(url, method,
-- headers, params, timeout_ms), which queues the request with pg_net and records it in
-- supabase_functions.hooks. Runs as a superuser: the pg_net grants need one.
begin;

create extension if not exists pg_net schema extensions;

do $roles$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_functions_admin') then
    create role supabase_functions_admin noinherit createrole login noreplication;
  end if;
end
$roles$;

create schema if not exists supabase_functions authorization supabase_admin;
grant usage on schema supabase_functions to postgres, anon, authenticated, service_role;
grant all on schema supabase_functions to supabase_functions_admin;
alter default privileges in schema supabase_functions grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema supabase_functions grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema supabase_functions grant all on sequences to postgres, anon, authenticated, service_role;

create table if not exists supabase_functions.migrations (
  version text primary key,
  inserted_at timestamptz not null default now()
);

create table if not exists supabase_functions.hooks (
  id bigserial primary key,
  hook_table_id integer not null,
  hook_name text not null,
  created_at timestamptz not null default now(),
  request_id bigint
);
create index if not exists supabase_functions_hooks_request_id_idx on supabase_functions.hooks (request_id);
create index if not exists supabase_functions_hooks_h_table_id_h_name_idx
  on supabase_functions.hooks (hook_table_id, hook_name);
comment on table supabase_functions.hooks is 'Supabase Functions Hooks: Audit trail for triggered hooks.';

create or replace function supabase_functions.http_request()
returns trigger
language plpgsql
security definer
set search_path = supabase_functions, net
as $fn$
declare
  target_url text := tg_argv[0];
  verb text := upper(coalesce(nullif(tg_argv[1], 'null'), 'POST'));
  request_headers jsonb := coalesce(nullif(tg_argv[2], 'null')::jsonb, '{"Content-Type": "application/json"}'::jsonb);
  request_params jsonb := coalesce(nullif(tg_argv[3], 'null')::jsonb, '{}'::jsonb);
  timeout_ms integer := coalesce(nullif(tg_argv[4], 'null')::integer, 1000);
  queued_id bigint;
begin
  if target_url is null or target_url = 'null' then
    raise exception 'url argument is missing';
  end if;
  if verb = 'GET' then
    queued_id := net.http_get(target_url, request_params, request_headers, timeout_ms);
  elsif verb = 'POST' then
    queued_id := net.http_post(
      target_url,
      jsonb_build_object('type', tg_op, 'schema', tg_table_schema, 'table', tg_table_name,
                         'record', new, 'old_record', old),
      request_params,
      request_headers,
      timeout_ms
    );
  else
    raise exception 'method argument % is invalid', verb;
  end if;
  insert into supabase_functions.hooks (hook_table_id, hook_name, request_id)
  values (tg_relid, tg_name, queued_id);
  return new;
end
$fn$;

revoke all on function supabase_functions.http_request() from public;
grant execute on function supabase_functions.http_request() to postgres, anon, authenticated, service_role;

alter table supabase_functions.migrations owner to supabase_functions_admin;
alter table supabase_functions.hooks owner to supabase_functions_admin;
alter function supabase_functions.http_request() owner to supabase_functions_admin;
grant all on all tables in schema supabase_functions to supabase_functions_admin;
grant all on all sequences in schema supabase_functions to supabase_functions_admin;
alter role supabase_functions_admin set search_path = supabase_functions;
grant supabase_functions_admin to postgres;

grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;

insert into supabase_functions.migrations (version) values ('initial') on conflict do nothing;

commit;
`;

const supabaseDatabase = `-- SupaManager: the _supabase database holds the platform services' own state
-- (analytics in _analytics, the pooler in _supavisor), apart from the user's postgres database.
select 'create database _supabase with owner supabase_admin'
 where not exists (select from pg_database where datname = '_supabase')
\\gexec
`;

const realtime = `-- SupaManager: realtime keeps its tenants and migrations in _realtime (DB_AFTER_CONNECT_QUERY).
create schema if not exists _realtime;
alter schema _realtime owner to supabase_admin;
`;

const logs = `-- SupaManager: analytics (Logflare) stores log events in _supabase._analytics.
\\connect _supabase
create schema if not exists _analytics;
alter schema _analytics owner to supabase_admin;
`;

const pooler = `-- SupaManager: the pooler (Supavisor) keeps its tenants in _supabase._supavisor.
\\connect _supabase
create schema if not exists _supavisor;
alter schema _supavisor owner to supabase_admin;
`;

const readOnly = `-- SupaManager: a login role for read_only members' SQL. It reads everything
-- (pg_read_all_data; bypassrls so row level security hides nothing from the dashboard), owns
-- nothing, and every transaction it starts is read-only.
${fromEnv("ropass", "READ_ONLY_PASSWORD")}

create role ${READ_ONLY_ROLE} with login inherit nosuperuser nocreatedb nocreaterole noreplication bypassrls
  password :'ropass';
grant pg_read_all_data to ${READ_ONLY_ROLE};
alter role ${READ_ONLY_ROLE} set default_transaction_read_only = on;
alter role ${READ_ONLY_ROLE} set statement_timeout = '60s';
comment on role ${READ_ONLY_ROLE} is 'SupaManager: SQL of read_only dashboard members';
`;

/** Release file path → where it is mounted in the db container, in the order the image runs them. */
export const INIT_SQL: { file: string; target: string; template: string }[] = [
  {
    file: "db/init-scripts/98-supamanager-webhooks.sql",
    target: "/docker-entrypoint-initdb.d/init-scripts/98-supamanager-webhooks.sql",
    template: webhooks,
  },
  {
    file: "db/init-scripts/99-supamanager-roles.sql",
    target: "/docker-entrypoint-initdb.d/init-scripts/99-supamanager-roles.sql",
    template: roles,
  },
  {
    file: "db/init-scripts/99-supamanager-jwt.sql",
    target: "/docker-entrypoint-initdb.d/init-scripts/99-supamanager-jwt.sql",
    template: jwt,
  },
  {
    file: "db/migrations/97-supamanager-supabase-db.sql",
    target: "/docker-entrypoint-initdb.d/migrations/97-supamanager-supabase-db.sql",
    template: supabaseDatabase,
  },
  {
    file: "db/migrations/99-supamanager-logs.sql",
    target: "/docker-entrypoint-initdb.d/migrations/99-supamanager-logs.sql",
    template: logs,
  },
  {
    file: "db/migrations/99-supamanager-pooler.sql",
    target: "/docker-entrypoint-initdb.d/migrations/99-supamanager-pooler.sql",
    template: pooler,
  },
  {
    file: "db/migrations/99-supamanager-read-only.sql",
    target: "/docker-entrypoint-initdb.d/migrations/99-supamanager-read-only.sql",
    template: readOnly,
  },
  {
    file: "db/migrations/99-supamanager-realtime.sql",
    target: "/docker-entrypoint-initdb.d/migrations/99-supamanager-realtime.sql",
    template: realtime,
  },
];
