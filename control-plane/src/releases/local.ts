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
 *   runs our init SQL: the read-only login role, see READ_ONLY_ROLE_SQL);
 * - meta: the real postgres-meta server from npm, talking to db. Its port is published on the
 *   host's bind address so the host agent can forward Studio's pg-meta requests to it
 *   (docs/data-plane.md); CRYPTO_KEY lets the control plane hand it a per-request connection
 *   (the read-only role) in `x-connection-encrypted`;
 * - gateway: an nginx stand-in for Kong, proxying /pg/ to meta. No PostgREST (no image).
 */
/**
 * The login role read_only members' SQL runs as (docs/data-plane.md). It may read everything
 * (pg_read_all_data; BYPASSRLS so row level security does not hide rows from the dashboard) and
 * write nothing: it owns nothing and has no write privilege anywhere, and its transactions are
 * read-only by default. Run once, when the database is initialised.
 */
export const READ_ONLY_ROLE_SQL = `-- SupaManager: the login role of read_only members (rendered per project; holds a password).
create role supamanager_read_only with login nosuperuser nocreatedb nocreaterole noreplication bypassrls
  password '\${READ_ONLY_PASSWORD}';
grant pg_read_all_data to supamanager_read_only;
alter role supamanager_read_only set default_transaction_read_only = on;
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
      ports: [{ name: "meta", container: 8080 }],
      dependsOn: ["db"],
      health: { test: ["CMD", "supamanager-healthcheck"], intervalSeconds: 2, retries: 30, startPeriodSeconds: 5 },
      required: true,
      memoryShare: 0.3,
    },
    gateway: {
      image: "supamanager/gateway:local",
      imageKey: "gateway",
      environment: { GATEWAY_PORT: "8000", PG_META_URL: "http://meta:8080" },
      ports: [{ name: "gateway", container: 8000 }],
      health: { test: ["CMD", "supamanager-healthcheck"], intervalSeconds: 2, retries: 30, startPeriodSeconds: 2 },
      required: true,
      memoryShare: 0.2,
    },
  },
  files: [{ path: "db/init-read-only.sql", template: READ_ONLY_ROLE_SQL, mode: 0o644 }],
  // The superuser the image creates (POSTGRES_USER) dumps its one database (POSTGRES_DB).
  backup: {
    artifacts: [
      { name: "db.dump", source: { kind: "pg_dump", service: "db", database: "postgres", user: "postgres" } },
    ],
  },
};
