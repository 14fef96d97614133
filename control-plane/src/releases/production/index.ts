import type { z } from "zod";
import type { ReleaseManifest } from "../manifest.js";
import { interpolate } from "../variables.js";
import { GOTRUE_SETTINGS_ENV } from "./auth-env.js";
import { FUNCTIONS_MAIN_TEMPLATE } from "./functions-main.js";
import { KONG_TEMPLATE, REALTIME_HOST } from "./kong.js";
import { POOLER_TEMPLATE } from "./pooler.js";
import { INIT_SQL, JWT_EXPIRY_SECONDS } from "./sql.js";
import { VECTOR_TEMPLATE } from "./vector.js";

/**
 * The Kong-based production release: the official Supabase self-hosted stack (docker/ of
 * supabase/supabase at commit 00069a4c, early March 2026 tags) minus its per-project Studio, as
 * data, with the defects of shared/design/reviews/production-release-2026-12.md fixed (the
 * numbers in comments below are the review's). Every config file is ours (kong.json,
 * init SQL, vector.json, pooler.exs, the functions main service). docs/releases.md describes the
 * services, their health rules and dependencies; docs/adr/0011-production-release.md the choices.
 *
 * Connection URLs carry POSTGRES_PASSWORD_URLENCODED (db_pass is the user's and may hold URL
 * syntax); services that take separate host/user/password settings get POSTGRES_PASSWORD as is.
 */

export const PRODUCTION_RELEASE_NAME = "supabase-2026.02";

const MiB = 1024 * 1024;

/**
 * Memory floors (mem_limit never goes below them; the release minimum is their sum for the parts
 * a project runs). Measured idle footprints plus headroom, sources in shared/design/upstream-2026.md
 * §4 and the review's #3–#5: KahitSan/supabase-air DIGITALOCEAN-BENCHMARKS.md (kong 940 MB with
 * auto workers, 384 MB squeezed; pooler 191, storage 113, meta 110, db 95, imgproxy 23, auth 11,
 * rest 7 MB), supabase/supabase#32713 (realtime and supavisor BEAM nodes ~200–230 MB RSS),
 * supabase/supabase#30122 (Logflare 300 MB–1.8 GB idle, OOM-killed when constrained), and the
 * functions main service's user workers (memoryLimitMb 150 each, functions-main.ts).
 */
export const MEMORY_FLOORS_MIB = {
  db: 384,
  kong: 384,
  auth: 64,
  rest: 64,
  meta: 160,
  supavisor: 256,
  realtime: 256,
  storage: 192,
  imgproxy: 64,
  functions: 320,
  analytics: 1024,
  vector: 64,
} as const;
const floor = (service: keyof typeof MEMORY_FLOORS_MIB) => MEMORY_FLOORS_MIB[service] * MiB;
const DB = "db";
const PORT = "5432";
const JWT_EXP = String(JWT_EXPIRY_SECONDS);
const pw = interpolate("POSTGRES_PASSWORD");
const pwUrl = interpolate("POSTGRES_PASSWORD_URLENCODED");
const dsn = (user: string, database = "postgres", scheme = "postgres") =>
  `${scheme}://${user}:${pwUrl}@${DB}:${PORT}/${database}`;

const wget = (url: string) => ["CMD", "wget", "--no-verbose", "--tries=1", "--spider", url];
const curl = (url: string) => ["CMD", "curl", "-sSfL", "--head", "-o", "/dev/null", url];
/** A health command for node images (no wget or curl in them): exit 0 on HTTP 200. */
export const NODE_HEALTH = (url: string) => [
  "CMD",
  "node",
  "-e",
  `fetch(${JSON.stringify(url)}).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))`,
];

export const PRODUCTION_RELEASE: z.input<typeof ReleaseManifest> = {
  name: PRODUCTION_RELEASE_NAME,
  description:
    "Supabase self-hosted stack (early 2026, Kong 2.8 gateway): Postgres 15.8, auth, rest, realtime, storage, functions, pooler, logs",
  upstream: "supabase/supabase docker/ at 00069a4c (2026-03, before the self-hosted/v* tags)",
  // #5: every service may use the size's CPUs (boot-time migrations are never starved by a
  // 0.05-CPU quota); memory floors bound the stack (upstream sets no limits at all).
  cpuLimit: "size",
  // kong.ts: sb_publishable_/sb_secret_ are key-auth credentials, mapped to the role's JWT.
  opaqueKeys: true,
  // Logs are part of this release's upstream compose; a project may leave them out.
  defaultParts: ["logs", "realtime", "storage", "functions"],
  files: [
    ...INIT_SQL.map((f) => ({ path: f.file, template: f.template })),
    { path: "kong/kong.json", template: KONG_TEMPLATE },
    { path: "vector/vector.json", template: VECTOR_TEMPLATE },
    { path: "pooler/pooler.exs", template: POOLER_TEMPLATE },
    { path: "functions/main/index.ts", template: FUNCTIONS_MAIN_TEMPLATE },
  ],
  services: {
    vector: {
      image: "timberio/vector:0.53.0-alpine",
      command: ["--config", "/etc/vector/vector.json"],
      environment: {},
      mounts: [{ file: "vector/vector.json", target: "/etc/vector/vector.json" }],
      dockerSocket: true,
      // #1: Vector's API listens on 0.0.0.0 (IPv4 only) and busybox wget tries only the first
      // address of `localhost`, which is ::1 on Docker >= 26: ask by service name (upstream
      // docker-compose.yml services.vector.healthcheck).
      health: { test: wget("http://vector:9001/health"), intervalSeconds: 5, retries: 5, startPeriodSeconds: 5 },
      part: "logs",
      required: false,
      memoryMinBytes: floor("vector"),
      memoryShare: 0.03,
    },
    db: {
      image: "supabase/postgres:15.8.1.085",
      command: ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf", "-c", "log_min_messages=fatal"],
      environment: {
        POSTGRES_HOST: "/var/run/postgresql",
        PGPORT: PORT,
        POSTGRES_PORT: PORT,
        PGDATABASE: "postgres",
        POSTGRES_DB: "postgres",
        PGPASSWORD: pw,
        POSTGRES_PASSWORD: pw,
        JWT_SECRET: interpolate("JWT_SECRET"),
        JWT_EXP,
        READ_ONLY_PASSWORD: interpolate("READ_ONLY_PASSWORD"),
      },
      // #9: no published port: clients reach Postgres through Supavisor (upstream publishes only
      // services.supavisor.ports; the image's pg_hba lets superusers in from anywhere).
      volumes: [
        { name: "db-data", target: "/var/lib/postgresql/data" },
        { name: "db-config", target: "/etc/postgresql-custom" },
      ],
      // #11: no pgsodium key bind mount inside db-config: the image's pgsodium_getkey.sh writes the
      // key into the volume on first start (as upstream), so restoring db-config.tar can replace it.
      mounts: INIT_SQL.map((f) => ({ file: f.file, target: f.target })),
      dependsOn: ["vector"],
      health: {
        test: ["CMD", "pg_isready", "-U", "postgres", "-h", "localhost"],
        intervalSeconds: 5,
        retries: 10,
        // initdb plus the image's ~60 migrations on first start.
        startPeriodSeconds: 30,
      },
      required: true,
      memoryMinBytes: floor("db"),
      memoryShare: 0.35,
    },
    analytics: {
      image: "supabase/logflare:1.31.2",
      environment: {
        LOGFLARE_NODE_HOST: "127.0.0.1",
        DB_USERNAME: "supabase_admin",
        DB_DATABASE: "_supabase",
        DB_HOSTNAME: DB,
        DB_PORT: PORT,
        DB_PASSWORD: pw,
        DB_SCHEMA: "_analytics",
        LOGFLARE_PUBLIC_ACCESS_TOKEN: interpolate("LOGFLARE_PUBLIC_ACCESS_TOKEN"),
        LOGFLARE_PRIVATE_ACCESS_TOKEN: interpolate("LOGFLARE_PRIVATE_ACCESS_TOKEN"),
        LOGFLARE_SINGLE_TENANT: "true",
        LOGFLARE_SUPABASE_MODE: "true",
        POSTGRES_BACKEND_URL: dsn("supabase_admin", "_supabase", "postgresql"),
        POSTGRES_BACKEND_SCHEMA: "_analytics",
        LOGFLARE_FEATURE_FLAG_OVERRIDE: "multibackend=true",
      },
      dependsOn: ["db"],
      // #3: plain curl, as upstream (services.analytics.healthcheck.test): any HTTP answer passes,
      // including Logflare's `503 coming_up` while it seeds; `-f` failed on it.
      health: {
        test: ["CMD", "curl", "-sS", "-o", "/dev/null", "http://analytics:4000/health"],
        intervalSeconds: 5,
        retries: 10,
        startPeriodSeconds: 60,
      },
      part: "logs",
      required: true,
      memoryMinBytes: floor("analytics"),
      memoryShare: 0.1,
    },
    kong: {
      image: "kong:2.8.1",
      environment: {
        KONG_DATABASE: "off",
        KONG_DECLARATIVE_CONFIG: "/home/kong/kong.json",
        KONG_DNS_ORDER: "LAST,A,CNAME",
        KONG_PLUGINS: "request-transformer,cors,key-auth,acl,request-termination",
        KONG_NGINX_PROXY_PROXY_BUFFER_SIZE: "160k",
        KONG_NGINX_PROXY_PROXY_BUFFERS: "64 160k",
        // #4: nginx starts one worker per host CPU by default (a `cpus` limit does not change
        // that), ~100 MB each: two workers, whatever the host (the Supabase CLI pins one).
        KONG_NGINX_WORKER_PROCESSES: "2",
      },
      ports: [{ name: "gateway", container: 8000 }],
      mounts: [{ file: "kong/kong.json", target: "/home/kong/kong.json" }],
      dependsOn: ["analytics"],
      health: { test: ["CMD", "kong", "health"], intervalSeconds: 5, retries: 10, startPeriodSeconds: 10 },
      required: true,
      memoryMinBytes: floor("kong"),
      memoryShare: 0.05,
    },
    auth: {
      image: "supabase/gotrue:v2.186.0",
      environment: {
        GOTRUE_API_HOST: "0.0.0.0",
        GOTRUE_API_PORT: "9999",
        API_EXTERNAL_URL: interpolate("API_EXTERNAL_URL"),
        GOTRUE_DB_DRIVER: "postgres",
        GOTRUE_DB_DATABASE_URL: dsn("supabase_auth_admin"),
        ...GOTRUE_SETTINGS_ENV,
        GOTRUE_JWT_ADMIN_ROLES: "service_role",
        GOTRUE_JWT_AUD: "authenticated",
        GOTRUE_JWT_DEFAULT_GROUP_NAME: "authenticated",
        GOTRUE_JWT_SECRET: interpolate("JWT_SECRET"),
        GOTRUE_EXTERNAL_EMAIL_ENABLED: "true",
        GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED: "false",
        GOTRUE_EXTERNAL_PHONE_ENABLED: "false",
        GOTRUE_SMS_AUTOCONFIRM: "false",
      },
      dependsOn: ["db", "analytics"],
      // GoTrue listens dual-stack (Go's wildcard listener), so `localhost` (::1) answers.
      health: { test: wget("http://localhost:9999/health"), intervalSeconds: 5, retries: 5, startPeriodSeconds: 10 },
      required: true,
      memoryMinBytes: floor("auth"),
      memoryShare: 0.03,
    },
    rest: {
      image: "postgrest/postgrest:v14.5",
      command: ["postgrest"],
      environment: {
        PGRST_DB_URI: dsn("authenticator"),
        PGRST_DB_SCHEMAS: "public,storage,graphql_public",
        PGRST_DB_MAX_ROWS: "1000",
        PGRST_DB_EXTRA_SEARCH_PATH: "public,extensions",
        PGRST_DB_ANON_ROLE: "anon",
        PGRST_JWT_SECRET: interpolate("JWT_SECRET"),
        PGRST_DB_USE_LEGACY_GUCS: "false",
        PGRST_APP_SETTINGS_JWT_SECRET: interpolate("JWT_SECRET"),
        PGRST_APP_SETTINGS_JWT_EXP: JWT_EXP,
        // #14: the admin server answers /ready once the pool and the schema cache are good.
        PGRST_ADMIN_SERVER_PORT: "3001",
      },
      dependsOn: ["db", "analytics"],
      // `postgrest --ready` asks the admin server (the image has no shell or HTTP client).
      health: { test: ["CMD", "postgrest", "--ready"], intervalSeconds: 5, retries: 10, startPeriodSeconds: 10 },
      required: true,
      memoryMinBytes: floor("rest"),
      memoryShare: 0.05,
    },
    realtime: {
      image: "supabase/realtime:v2.78.15",
      environment: {
        PORT: "4000",
        DB_HOST: DB,
        DB_PORT: PORT,
        DB_USER: "supabase_admin",
        DB_PASSWORD: pw,
        DB_NAME: "postgres",
        DB_AFTER_CONNECT_QUERY: "SET search_path TO _realtime",
        DB_ENC_KEY: interpolate("DB_ENC_KEY"),
        API_JWT_SECRET: interpolate("JWT_SECRET"),
        METRICS_JWT_SECRET: interpolate("JWT_SECRET"),
        SECRET_KEY_BASE: interpolate("SECRET_KEY_BASE"),
        ERL_AFLAGS: "-proto_dist inet_tcp",
        DNS_NODES: "''",
        RLIMIT_NOFILE: "10000",
        APP_NAME: "realtime",
        SEED_SELF_HOST: "true",
        RUN_JANITOR: "true",
        DISABLE_HEALTHCHECK_LOGGING: "true",
        // Read by the health command below (the shell expands it inside the container).
        SUPAMANAGER_HEALTH_BEARER: interpolate("ANON_KEY"),
      },
      // The self-hosted tenant is `realtime-dev`, taken from the host name realtime is called by.
      networkAliases: [REALTIME_HOST],
      dependsOn: ["db", "analytics"],
      part: "realtime",
      memoryMinBytes: floor("realtime"),
      health: {
        test: [
          "CMD-SHELL",
          'curl -sSfL --head -o /dev/null -H "Authorization: Bearer $SUPAMANAGER_HEALTH_BEARER" http://localhost:4000/api/tenants/realtime-dev/health',
        ],
        intervalSeconds: 10,
        retries: 5,
        startPeriodSeconds: 20,
      },
      required: true,
      memoryShare: 0.08,
    },
    storage: {
      image: "supabase/storage-api:v1.44.2",
      environment: {
        ANON_KEY: interpolate("ANON_KEY"),
        SERVICE_KEY: interpolate("SERVICE_ROLE_KEY"),
        POSTGREST_URL: "http://rest:3000",
        PGRST_JWT_SECRET: interpolate("JWT_SECRET"),
        DATABASE_URL: dsn("supabase_storage_admin"),
        STORAGE_PUBLIC_URL: interpolate("SUPABASE_PUBLIC_URL"),
        REQUEST_ALLOW_X_FORWARDED_PATH: "true",
        FILE_SIZE_LIMIT: "52428800",
        STORAGE_BACKEND: "file",
        GLOBAL_S3_BUCKET: "stub",
        FILE_STORAGE_BACKEND_PATH: "/var/lib/storage",
        TENANT_ID: interpolate("PROJECT_REF"),
        REGION: "local",
        ENABLE_IMAGE_TRANSFORMATION: "true",
        IMGPROXY_URL: "http://imgproxy:5001",
        S3_PROTOCOL_ACCESS_KEY_ID: interpolate("S3_PROTOCOL_ACCESS_KEY_ID"),
        S3_PROTOCOL_ACCESS_KEY_SECRET: interpolate("S3_PROTOCOL_ACCESS_KEY_SECRET"),
      },
      volumes: [{ name: "storage-data", target: "/var/lib/storage" }],
      dependsOn: ["db", "rest", "imgproxy"],
      // #2: storage-api listens on 0.0.0.0 (IPv4 only): ask by service name, as upstream
      // (services.storage.healthcheck.test, supabase/supabase#42776).
      health: { test: wget("http://storage:5000/status"), intervalSeconds: 5, retries: 5, startPeriodSeconds: 10 },
      part: "storage",
      required: true,
      memoryMinBytes: floor("storage"),
      memoryShare: 0.06,
    },
    imgproxy: {
      image: "darthsim/imgproxy:v3.30.1",
      environment: {
        IMGPROXY_BIND: ":5001",
        IMGPROXY_LOCAL_FILESYSTEM_ROOT: "/",
        IMGPROXY_USE_ETAG: "true",
        IMGPROXY_ENABLE_WEBP_DETECTION: "true",
        IMGPROXY_MAX_SRC_RESOLUTION: "16.8",
      },
      volumes: [{ name: "storage-data", target: "/var/lib/storage" }],
      health: { test: ["CMD", "imgproxy", "health"], intervalSeconds: 5, retries: 5, startPeriodSeconds: 5 },
      part: "storage",
      required: false,
      memoryMinBytes: floor("imgproxy"),
      memoryShare: 0.04,
    },
    meta: {
      image: "supabase/postgres-meta:v0.95.2",
      environment: {
        PG_META_PORT: "8080",
        PG_META_DB_HOST: DB,
        PG_META_DB_PORT: PORT,
        PG_META_DB_NAME: "postgres",
        PG_META_DB_USER: "supabase_admin",
        PG_META_DB_PASSWORD: pw,
        // Decrypts `x-connection-encrypted` (the read-only role's per-request connection).
        CRYPTO_KEY: interpolate("PG_META_CRYPTO_KEY"),
        // postgres-meta buffers whole results: cap them near what one agent frame can carry.
        PG_META_MAX_RESULT_SIZE_MB: "8",
      },
      dependsOn: ["db", "analytics"],
      // #14: a health rule (the image is node; postgres-meta listens on PG_META_HOST, `::` by default).
      health: { test: NODE_HEALTH("http://meta:8080/health"), intervalSeconds: 5, retries: 10, startPeriodSeconds: 10 },
      required: true,
      memoryMinBytes: floor("meta"),
      memoryShare: 0.04,
    },
    functions: {
      image: "supabase/edge-runtime:v1.70.3",
      command: ["start", "--main-service", "/home/deno/functions/main"],
      environment: {
        JWT_SECRET: interpolate("JWT_SECRET"),
        SUPABASE_URL: "http://kong:8000",
        SUPABASE_PUBLIC_URL: interpolate("SUPABASE_PUBLIC_URL"),
        SUPABASE_ANON_KEY: interpolate("ANON_KEY"),
        SUPABASE_SERVICE_ROLE_KEY: interpolate("SERVICE_ROLE_KEY"),
        SUPABASE_DB_URL: dsn("postgres", "postgres", "postgresql"),
        VERIFY_JWT: "true",
      },
      volumes: [
        { name: "functions", target: "/home/deno/functions" },
        { name: "deno-cache", target: "/root/.cache/deno" },
      ],
      mounts: [{ file: "functions/main/index.ts", target: "/home/deno/functions/main/index.ts" }],
      dependsOn: ["analytics"],
      part: "functions",
      required: false,
      memoryMinBytes: floor("functions"),
      memoryShare: 0.1,
    },
    supavisor: {
      image: "supabase/supavisor:2.7.4",
      command: [
        "/bin/sh",
        "-c",
        "/app/bin/migrate && /app/bin/supavisor eval 'Code.eval_file(\"/etc/pooler/pooler.exs\")' && exec /app/bin/server",
      ],
      environment: {
        PORT: "4000",
        POSTGRES_HOST: DB,
        POSTGRES_PORT: PORT,
        POSTGRES_DB: "postgres",
        POSTGRES_PASSWORD: pw,
        DATABASE_URL: dsn("supabase_admin", "_supabase", "ecto"),
        CLUSTER_POSTGRES: "true",
        SECRET_KEY_BASE: interpolate("SECRET_KEY_BASE"),
        VAULT_ENC_KEY: interpolate("VAULT_ENC_KEY"),
        API_JWT_SECRET: interpolate("JWT_SECRET"),
        METRICS_JWT_SECRET: interpolate("JWT_SECRET"),
        REGION: "local",
        ERL_AFLAGS: "-proto_dist inet_tcp",
        POOLER_TENANT_ID: interpolate("POOLER_TENANT_ID"),
        POOLER_DEFAULT_POOL_SIZE: "20",
        POOLER_MAX_CLIENT_CONN: "100",
        POOLER_POOL_MODE: "transaction",
        DB_POOL_SIZE: "5",
      },
      ports: [
        { name: "pooler-session", container: 5432 },
        { name: "pooler-transaction", container: 6543 },
      ],
      mounts: [{ file: "pooler/pooler.exs", target: "/etc/pooler/pooler.exs" }],
      dependsOn: ["db", "analytics"],
      health: {
        test: curl("http://127.0.0.1:4000/api/health"),
        intervalSeconds: 10,
        retries: 5,
        startPeriodSeconds: 20,
      },
      required: true,
      memoryMinBytes: floor("supavisor"),
      memoryShare: 0.07,
    },
  },
  // ADR 0015: the `postgres` database (dumped as supabase_admin, which owns the Supabase schemas),
  // the db-config volume (pgsodium root key, custom config) and the storage service's files.
  database: { service: "db", postgresMajor: 15, volume: "db-data" },
  backup: {
    artifacts: [
      { name: "db.dump", source: { kind: "pg_dump", service: "db", database: "postgres", user: "supabase_admin" } },
      { name: "db-config.tar", source: { kind: "tar", service: "db", path: "/etc/postgresql-custom" } },
      { name: "storage.tar", source: { kind: "tar", service: "storage", path: "/var/lib/storage" } },
    ],
  },
};
