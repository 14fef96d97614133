import type { z } from "zod";
import type { ReleaseManifest } from "./manifest.js";
import { interpolate } from "./render.js";

/**
 * The `local` release: images built on each host by `npm run images:test` (or by `npm start`
 * on first use), never pulled (ADR 0018), see docs/test-images.md. The build tags every image
 * both by its recipe hash and as `supamanager/<name>:local`, the names below, so whatever the last
 * build on a host produced is what its projects run. SUPAMANAGER_LOCAL_IMAGES_FILE (the build's
 * images/manifest.local.json) may pin the exact recipe tags instead (`imageKey`); the tests do.
 * Services carrying an `imageKey` render with `pull_policy: never`.
 *
 * - db: a real PostgreSQL 15 (the image's entrypoint initialises $PGDATA on first start, and
 *   runs our init SQL: the read-only login role, see READ_ONLY_ROLE_SQL). Its port is published:
 *   the database is reachable with its password, as a Supabase project's is;
 * - meta: the real postgres-meta server from npm, talking to db as the superuser. NOT published:
 *   only the project's network reaches it, through the gateway (ADR 0023). CRYPTO_KEY lets the
 *   control plane hand it a per-request connection (the read-only role) in
 *   `x-connection-encrypted`;
 * - gateway: an nginx stand-in for Kong, proxying /pg/ to meta, and only for requests carrying the
 *   project's service-role key (`apikey` or `Authorization: Bearer`); everything else gets 401.
 *   The host agent reaches postgres-meta this way (docs/data-plane.md). No PostgREST (no image).
 *
 * Published ports are exactly what is public: `db` and `gateway`, on the host's bind address.
 */
/**
 * The login role read_only members' SQL runs as (docs/data-plane.md, ADR 0024), run once when the
 * database is initialised. The file holds no secret: psql reads the password from the db
 * container's environment (`\getenv`, psql 15), like POSTGRES_PASSWORD.
 *
 * - reads: SELECT on the tables and sequences of `public` and, through default privileges, on
 *   every table, sequence and schema the superuser creates later. Not pg_read_all_data, which
 *   also opens pg_authid (every role's password hash);
 * - writes nothing and owns nothing: no write privilege, no CREATE anywhere, no TEMPORARY on the
 *   database, and no large object functions (lo_create, lo_from_bytea, … are revoked from PUBLIC);
 * - cannot alter itself: REPLICATION makes PostgreSQL refuse ALTER ROLE on it (password,
 *   connection limit, validity) to anyone but a superuser. The replication slot functions
 *   that REPLICATION would open are revoked from PUBLIC, and pg_hba admits no replication
 *   connection from outside the container;
 * - limits: the role's defaults below; every request's connection sets them again as startup
 *   options (which outrank role settings the role may give itself with ALTER ROLE … SET), and
 *   the control plane terminates a request's backend when the request ends without an answer
 *   from the database (services/pg-meta/query.ts).
 */
export const READ_ONLY_ROLE_SQL = `-- SupaManager: the login role of read_only members (docs/data-plane.md, ADR 0024).
\\getenv supamanager_ro_password READ_ONLY_PASSWORD
create role supamanager_read_only with login nosuperuser nocreatedb nocreaterole noinherit replication bypassrls
  connection limit 16 password :'supamanager_ro_password';
grant usage on schema public to supamanager_read_only;
grant select on all tables in schema public to supamanager_read_only;
grant select on all sequences in schema public to supamanager_read_only;
alter default privileges grant usage on schemas to supamanager_read_only;
alter default privileges grant select on tables to supamanager_read_only;
alter default privileges grant select on sequences to supamanager_read_only;
revoke temporary on database :"DBNAME" from public;
do $$
declare f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_proc p
    where p.pronamespace = 'pg_catalog'::regnamespace and p.proname in (
      'lo_create', 'lo_creat', 'lo_from_bytea', 'lo_import',
      'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot', 'pg_drop_replication_slot',
      'pg_copy_physical_replication_slot', 'pg_copy_logical_replication_slot', 'pg_replication_slot_advance',
      'pg_logical_slot_get_changes', 'pg_logical_slot_peek_changes', 'pg_logical_slot_get_binary_changes',
      'pg_logical_slot_peek_binary_changes', 'pg_logical_emit_message')
  loop
    execute format('revoke execute on function %s from public', f);
  end loop;
end $$;
alter role supamanager_read_only set default_transaction_read_only = on;
alter role supamanager_read_only set statement_timeout = '60s';
alter role supamanager_read_only set idle_in_transaction_session_timeout = '60s';
alter role supamanager_read_only set idle_session_timeout = '300s';
comment on role supamanager_read_only is 'SupaManager: SQL of read_only dashboard members';
`;

export const LOCAL_RELEASE: z.input<typeof ReleaseManifest> = {
  name: "local",
  description: "Locally built test images: PostgreSQL 15, postgres-meta, an nginx gateway",
  services: {
    db: {
      image: "supamanager/postgres:local",
      imageKey: "postgres",
      environment: {
        POSTGRES_USER: "postgres",
        POSTGRES_DB: "postgres",
        POSTGRES_PASSWORD: interpolate("POSTGRES_PASSWORD"),
        // Read by the init SQL (READ_ONLY_ROLE_SQL) when the database is first initialised.
        READ_ONLY_PASSWORD: interpolate("READ_ONLY_PASSWORD"),
      },
      ports: [{ name: "db", container: 5432 }],
      volumes: [{ name: "db-data", target: "/var/lib/postgresql/data" }],
      mounts: [{ file: "db/init-read-only.sql", target: "/docker-entrypoint-initdb.d/50-supamanager-read-only.sql" }],
      health: { test: ["CMD", "supamanager-healthcheck"], intervalSeconds: 2, retries: 30, startPeriodSeconds: 5 },
      required: true,
      memoryShare: 0.5,
    },
    meta: {
      image: "supamanager/postgres-meta:local",
      imageKey: "postgres-meta",
      environment: {
        PG_META_PORT: "8080",
        PG_META_DB_HOST: "db",
        PG_META_DB_PORT: "5432",
        PG_META_DB_USER: "postgres",
        PG_META_DB_NAME: "postgres",
        PG_META_DB_PASSWORD: interpolate("POSTGRES_PASSWORD"),
        // Decrypts `x-connection-encrypted` (a per-request connection string, CryptoJS AES).
        CRYPTO_KEY: interpolate("PG_META_CRYPTO_KEY"),
        // postgres-meta buffers whole results: cap them near what one agent frame can carry.
        PG_META_MAX_RESULT_SIZE_MB: "8",
      },
      // No ports: reached only on the project's network, through the gateway.
      dependsOn: ["db"],
      health: { test: ["CMD", "supamanager-healthcheck"], intervalSeconds: 2, retries: 30, startPeriodSeconds: 5 },
      required: true,
      memoryShare: 0.3,
    },
    gateway: {
      image: "supamanager/gateway:local",
      imageKey: "gateway",
      environment: {
        GATEWAY_PORT: "8000",
        PG_META_URL: "http://meta:8080",
        // The only key the gateway's routes accept.
        GATEWAY_SERVICE_KEY: interpolate("SERVICE_ROLE_KEY"),
      },
      ports: [{ name: "gateway", container: 8000 }],
      health: { test: ["CMD", "supamanager-healthcheck"], intervalSeconds: 2, retries: 30, startPeriodSeconds: 2 },
      required: true,
      memoryShare: 0.2,
    },
  },
  // 0644: the container's postgres user reads it; it holds no secret (the password comes from the
  // environment). Files that hold secrets are 0600 (render.test.ts checks every release).
  files: [{ path: "db/init-read-only.sql", template: READ_ONLY_ROLE_SQL, mode: 0o644 }],
  // The superuser the image creates (POSTGRES_USER) dumps its one database (POSTGRES_DB).
  database: { service: "db", postgresMajor: 15, volume: "db-data" },
  backup: {
    artifacts: [
      { name: "db.dump", source: { kind: "pg_dump", service: "db", database: "postgres", user: "postgres" } },
    ],
  },
};

/**
 * `local-17`: the `local` release on PostgreSQL 17 (Debian 13's `postgresql-17`, image
 * `postgres-17`), everything else the same services, so that an upgrade across a PostgreSQL
 * major (issue 18, ADR 0038) runs for real on hosts without a registry. The init SQL works on
 * both majors (`\getenv` is psql 15+).
 */
export const LOCAL_17_RELEASE: z.input<typeof ReleaseManifest> = {
  ...LOCAL_RELEASE,
  name: "local-17",
  description: "Locally built test images: PostgreSQL 17, postgres-meta, an nginx gateway",
  services: {
    ...LOCAL_RELEASE.services,
    db: {
      ...(LOCAL_RELEASE.services.db as NonNullable<typeof LOCAL_RELEASE.services.db>),
      image: "supamanager/postgres-17:local",
      imageKey: "postgres-17",
    },
  },
  database: { service: "db", postgresMajor: 17, volume: "db-data" },
};
