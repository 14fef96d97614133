import type { z } from "zod";
import type { ReleaseManifest } from "../manifest.js";
import { GOTRUE_SETTINGS_ENV } from "../production/auth-env.js";
import { FUNCTIONS_MAIN_TEMPLATE } from "../production/functions-main.js";
import { NODE_HEALTH } from "../production/index.js";
import { REALTIME_HOST } from "../production/kong.js";
import { POOLER_TEMPLATE } from "../production/pooler.js";
import { INIT_SQL, JWT_EXPIRY_SECONDS } from "../production/sql.js";
import { VECTOR_TEMPLATE } from "../production/vector.js";
import { interpolate } from "../variables.js";
import { ENVOY_TEMPLATE } from "./envoy.js";

/**
 * The release that follows upstream's current self-hosted layout: supabase/supabase `docker/` at
 * tag `self-hosted/v0.8.2` (the v0.8 line: Envoy is the default gateway `api-gw` since 0.8.0,
 * PostgreSQL 17 the default since 0.6.0, Logflare and Vector an opt-in override since 0.5.0,
 * Studio-facing pg-meta connecting as `postgres` since 0.6.0, API_EXTERNAL_URL with `/auth/v1`
 * since 0.7.0; shared/design/upstream-2026.md §0). Config files are ours (envoy.json and the Kong
 * release's init SQL, pooler.exs, vector.json and functions main service).
 *
 * Image tags: those of `self-hosted/v0.8.2` as two independent third-party records of that tag's
 * compose agree (a comparison table "official Compose self-hosted/v0.8.2" and a generated
 * playground stack of September 2026): postgres 17.6.1.136, gotrue v2.196.0, postgrest v14.17,
 * realtime v2.134.10, storage-api v1.74.0, imgproxy v3.31.4, postgres-meta v0.99.0, edge-runtime
 * v1.76.2, supavisor 2.9.12, envoy v1.39.1. The logs part's images are those of upstream's
 * docker-compose.logs.yml (07b8529e): logflare 1.42.0, vector 0.53.0-alpine. Upstream's compose
 * at the tag itself could not be read here; docs/releases.md says so.
 */

export const V08_RELEASE_NAME = "supabase-v0.8.2";

const MiB = 1024 * 1024;
const DB = "db";
const PORT = "5432";
const JWT_EXP = String(JWT_EXPIRY_SECONDS);
const pw = interpolate("POSTGRES_PASSWORD");
const pwUrl = interpolate("POSTGRES_PASSWORD_URLENCODED");
const dsn = (user: string, database = "postgres", scheme = "postgres") =>
  `${scheme}://${user}:${pwUrl}@${DB}:${PORT}/${database}`;
const wget = (url: string) => ["CMD", "wget", "--no-verbose", "--tries=1", "--spider", url];

/**
 * Memory floors: the Kong release's measured footprints (production/index.ts MEMORY_FLOORS_MIB)
 * for the same services. The gateway is Envoy, for which no measurement was available: 128 MiB is
 * an estimate (Envoy's idle footprint is far below Kong's measured 384–940 MB), the one floor here
 * not taken from a measurement.
 */
export const V08_MEMORY_FLOORS_MIB = {
  db: 384,
  "api-gw": 128,
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
const floor = (service: keyof typeof V08_MEMORY_FLOORS_MIB) => V08_MEMORY_FLOORS_MIB[service] * MiB;

/** GoTrue's mail links: API_EXTERNAL_URL already ends in /auth/v1, so GoTrue's default `/verify` is right. */
const SETTINGS_ENV = Object.fromEntries(
  Object.entries(GOTRUE_SETTINGS_ENV).filter(([k]) => !k.startsWith("GOTRUE_MAILER_URLPATHS_")),
);

export const V08_RELEASE: z.input<typeof ReleaseManifest> = {
  name: V08_RELEASE_NAME,
  description:
    "Supabase self-hosted v0.8 layout: Envoy gateway, Postgres 17, auth, rest, pooler; realtime, storage, functions and logs as parts",
  upstream: "supabase/supabase self-hosted/v0.8.2",
  cpuLimit: "size",
  opaqueKeys: true,
  // Logs are opt-in upstream since 0.5.0 (docker-compose.logs.yml).
  defaultParts: ["realtime", "storage", "functions"],
  files: [
    ...INIT_SQL.map((f) => ({ path: f.file, template: f.template })),
    { path: "envoy/envoy.json", template: ENVOY_TEMPLATE },
    { path: "vector/vector.json", template: VECTOR_TEMPLATE },
    { path: "pooler/pooler.exs", template: POOLER_TEMPLATE },
    { path: "functions/main/index.ts", template: FUNCTIONS_MAIN_TEMPLATE },
  ],
  services: {
    db: {
      image: "supabase/postgres:17.6.1.136",
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
      volumes: [
        { name: "db-data", target: "/var/lib/postgresql/data" },
        { name: "db-config", target: "/etc/postgresql-custom" },
      ],
      mounts: INIT_SQL.map((f) => ({ file: f.file, target: f.target })),
      health: {
        test: ["CMD", "pg_isready", "-U", "postgres", "-h", "localhost"],
        intervalSeconds: 5,
        retries: 10,
        startPeriodSeconds: 30,
      },
      required: true,
      memoryMinBytes: floor("db"),
      memoryShare: 0.35,
    },
    "api-gw": {
      image: "envoyproxy/envoy:v1.39.1",
      command: ["envoy", "-c", "/etc/envoy/envoy.json", "--log-level", "warn"],
      ports: [{ name: "gateway", container: 8000 }],
      mounts: [{ file: "envoy/envoy.json", target: "/etc/envoy/envoy.json" }],
      // The admin API listens on 127.0.0.1 only (envoy.ts).
      health: { test: wget("http://127.0.0.1:9901/ready"), intervalSeconds: 5, retries: 10, startPeriodSeconds: 5 },
      required: true,
      memoryMinBytes: floor("api-gw"),
      memoryShare: 0.05,
    },
    auth: {
      image: "supabase/gotrue:v2.196.0",
      environment: {
        GOTRUE_API_HOST: "0.0.0.0",
        GOTRUE_API_PORT: "9999",
        // 0.7.0: API_EXTERNAL_URL includes /auth/v1 (OAuth callbacks and email links).
        API_EXTERNAL_URL: `${interpolate("SUPABASE_PUBLIC_URL")}/auth/v1`,
        GOTRUE_DB_DRIVER: "postgres",
        GOTRUE_DB_DATABASE_URL: dsn("supabase_auth_admin"),
        ...SETTINGS_ENV,
        GOTRUE_JWT_ADMIN_ROLES: "service_role",
        GOTRUE_JWT_AUD: "authenticated",
        GOTRUE_JWT_DEFAULT_GROUP_NAME: "authenticated",
        GOTRUE_JWT_SECRET: interpolate("JWT_SECRET"),
        GOTRUE_EXTERNAL_EMAIL_ENABLED: "true",
        GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED: "false",
        GOTRUE_EXTERNAL_PHONE_ENABLED: "false",
        GOTRUE_SMS_AUTOCONFIRM: "false",
      },
      dependsOn: ["db"],
      // GoTrue listens dual-stack (Go's wildcard listener), so `localhost` (::1) answers.
      health: { test: wget("http://localhost:9999/health"), intervalSeconds: 5, retries: 5, startPeriodSeconds: 10 },
      required: true,
      memoryMinBytes: floor("auth"),
      memoryShare: 0.03,
    },
    rest: {
      image: "postgrest/postgrest:v14.17",
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
        PGRST_ADMIN_SERVER_PORT: "3001",
      },
      dependsOn: ["db"],
      health: { test: ["CMD", "postgrest", "--ready"], intervalSeconds: 5, retries: 10, startPeriodSeconds: 10 },
      required: true,
      memoryMinBytes: floor("rest"),
      memoryShare: 0.05,
    },
    realtime: {
      image: "supabase/realtime:v2.134.10",
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
        SUPAMANAGER_HEALTH_BEARER: interpolate("ANON_KEY"),
      },
      networkAliases: [REALTIME_HOST],
      dependsOn: ["db"],
      health: {
        test: [
          "CMD-SHELL",
          'curl -sSfL --head -o /dev/null -H "Authorization: Bearer $SUPAMANAGER_HEALTH_BEARER" http://localhost:4000/api/tenants/realtime-dev/health',
        ],
        intervalSeconds: 10,
        retries: 5,
        startPeriodSeconds: 20,
      },
      part: "realtime",
      required: true,
      memoryMinBytes: floor("realtime"),
      memoryShare: 0.08,
    },
    storage: {
      image: "supabase/storage-api:v1.74.0",
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
      // storage-api listens on 0.0.0.0 (IPv4 only): asked by service name.
      health: { test: wget("http://storage:5000/status"), intervalSeconds: 5, retries: 5, startPeriodSeconds: 10 },
      part: "storage",
      required: true,
      memoryMinBytes: floor("storage"),
      memoryShare: 0.06,
    },
    imgproxy: {
      image: "darthsim/imgproxy:v3.31.4",
      environment: {
        IMGPROXY_BIND: ":5001",
        IMGPROXY_LOCAL_FILESYSTEM_ROOT: "/",
        IMGPROXY_USE_ETAG: "true",
        // Renamed from IMGPROXY_ENABLE_WEBP_DETECTION upstream on 2026-04-08.
        IMGPROXY_AUTO_WEBP: "true",
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
      image: "supabase/postgres-meta:v0.99.0",
      environment: {
        PG_META_PORT: "8080",
        PG_META_DB_HOST: DB,
        PG_META_DB_PORT: PORT,
        PG_META_DB_NAME: "postgres",
        // 0.6.0: Studio and pg-meta connect as `postgres`, not `supabase_admin`.
        PG_META_DB_USER: "postgres",
        PG_META_DB_PASSWORD: pw,
        CRYPTO_KEY: interpolate("PG_META_CRYPTO_KEY"),
        PG_META_MAX_RESULT_SIZE_MB: "8",
      },
      dependsOn: ["db"],
      health: { test: NODE_HEALTH("http://meta:8080/health"), intervalSeconds: 5, retries: 10, startPeriodSeconds: 10 },
      required: true,
      memoryMinBytes: floor("meta"),
      memoryShare: 0.04,
    },
    functions: {
      image: "supabase/edge-runtime:v1.76.2",
      command: ["start", "--main-service", "/home/deno/functions/main"],
      environment: {
        JWT_SECRET: interpolate("JWT_SECRET"),
        SUPABASE_URL: "http://api-gw:8000",
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
      part: "functions",
      required: false,
      memoryMinBytes: floor("functions"),
      memoryShare: 0.1,
    },
    supavisor: {
      image: "supabase/supavisor:2.9.12",
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
      dependsOn: ["db"],
      health: { test: ["CMD", "curl", "-sSfL", "--head", "-o", "/dev/null", "http://127.0.0.1:4000/api/health"] },
      required: true,
      memoryMinBytes: floor("supavisor"),
      memoryShare: 0.07,
    },
    analytics: {
      image: "supabase/logflare:1.42.0",
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
      // Any HTTP answer passes (Logflare says 503 while it seeds): no -f.
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
    vector: {
      image: "timberio/vector:0.53.0-alpine",
      command: ["--config", "/etc/vector/vector.json"],
      mounts: [{ file: "vector/vector.json", target: "/etc/vector/vector.json" }],
      dockerSocket: true,
      // docker-compose.logs.yml: vector waits for analytics; nothing else waits for logs.
      dependsOn: ["analytics"],
      health: { test: wget("http://vector:9001/health"), intervalSeconds: 5, retries: 5, startPeriodSeconds: 5 },
      part: "logs",
      required: false,
      memoryMinBytes: floor("vector"),
      memoryShare: 0.03,
    },
  },
  database: { service: "db", postgresMajor: 17, volume: "db-data" },
  backup: {
    artifacts: [
      { name: "db.dump", source: { kind: "pg_dump", service: "db", database: "postgres", user: "supabase_admin" } },
      { name: "db-config.tar", source: { kind: "tar", service: "db", path: "/etc/postgresql-custom" } },
      { name: "storage.tar", source: { kind: "tar", service: "storage", path: "/var/lib/storage" } },
    ],
  },
};
