import { type AgentUpdate, AgentVersion, NpmPackageName, PackageIntegrity } from "@supamanager/shared";
import { z } from "zod";

/**
 * Every setting SupaManager reads, parsed once at the entry and passed down as a value.
 * Services never read `process.env`. Each variable is documented in docs/configuration.md.
 */

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

const positiveInt = z.coerce.number().int().positive();

/** A DNS name such as `projects.example.com`: lower case labels, no scheme, port or trailing dot. */
const domainName = (name: string) =>
  z
    .string()
    .transform((v) => v.toLowerCase())
    .pipe(
      z
        .string()
        .max(200, `${name} must be at most 200 characters`)
        .regex(
          /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
          `${name} must be a domain name such as projects.example.com (no scheme, port or path)`,
        ),
    );

export const EnvSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** The URL people and agents use to reach this control plane (printed at start-up). */
  SUPAMANAGER_PUBLIC_URL: z.url().optional(),
  DATABASE_URL: z.string().min(1).optional(),
  DATABASE_POOL_MAX: positiveInt.default(10),
  SUPAMANAGER_DATA_DIR: z.string().min(1).default("./.data"),
  SUPAMANAGER_JWT_SECRET: z.string().min(32, "SUPAMANAGER_JWT_SECRET must be at least 32 characters").optional(),
  SUPAMANAGER_ENCRYPTION_KEY: z.string().optional(),
  /** Retired encryption keys, still accepted for decryption while values are re-encrypted. */
  SUPAMANAGER_ENCRYPTION_KEYS_OLD: list.default([]),
  SUPAMANAGER_CORS_ORIGINS: list.default([]),
  SUPAMANAGER_ALLOW_SIGNUP: bool.default(false),
  SUPAMANAGER_ADMIN_EMAIL: z.email().optional(),
  SUPAMANAGER_ADMIN_PASSWORD: z.string().min(8).optional(),
  SUPAMANAGER_ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(3600).default(3600),
  SUPAMANAGER_REFRESH_TOKEN_TTL_SECONDS: positiveInt.default(30 * 24 * 3600),
  SUPAMANAGER_LOGIN_WINDOW_SECONDS: positiveInt.default(900),
  SUPAMANAGER_LOGIN_MAX_PER_IP: positiveInt.default(50),
  SUPAMANAGER_LOGIN_MAX_PER_EMAIL: positiveInt.default(10),
  SUPAMANAGER_TRUST_PROXY: bool.default(false),
  /**
   * How long a process reuses a dashboard session it found live (ADR 0033): a session revoked
   * elsewhere (another replica, another isolate) stops working within this many seconds; on the
   * process that revoked it, at once. 0 checks the database on every request.
   */
  SUPAMANAGER_SESSION_CHECK_SECONDS: z.coerce.number().int().min(0).max(30).default(5),
  /** Seconds without a heartbeat after which a host reads `offline` (and its projects UNKNOWN). */
  SUPAMANAGER_HOST_OFFLINE_SECONDS: positiveInt.default(45),
  /** How often agents are told to send a heartbeat (must be well under the offline grace). */
  SUPAMANAGER_HEARTBEAT_SECONDS: positiveInt.default(15),
  /** The release new projects run (a manifest name: built in, or from SUPAMANAGER_RELEASES_FILE). */
  SUPAMANAGER_RELEASE: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "SUPAMANAGER_RELEASE must be a release name")
    // The release that follows upstream's current self-hosted layout (ADR 0021). Hosts without
    // registry access (tests, these machines) run `local`, named explicitly.
    .default("supabase-v0.8.2"),
  /** A JSON file with more release manifests (an array of manifests, or one manifest). */
  SUPAMANAGER_RELEASES_FILE: z.string().min(1).optional(),
  /** images/manifest.local.json: service image name → local tag, used by the `local` release. */
  SUPAMANAGER_LOCAL_IMAGES_FILE: z.string().min(1).optional(),
  /**
   * The host agent `npm start` runs for this machine (ADR 0019): `auto` enrolls and runs it when a
   * Docker engine answers, `off` never does. Default: `auto`, except `off` when NODE_ENV=production.
   * Only the Node entry reads it.
   */
  SUPAMANAGER_LOCAL_HOST: z.enum(["auto", "off"]).optional(),
  /**
   * Memory of each host kept for the host itself (OS, Docker, the agent), in MiB: placement
   * promises projects at most the host's total memory minus this (services/fleet/scheduling.ts).
   */
  SUPAMANAGER_HOST_MEMORY_RESERVE_MIB: positiveInt.default(1024),
  /**
   * Host ports handed out to projects, `first-last` inclusive. The default sits below Linux's
   * ephemeral range (32768+), whose ports outgoing connections may hold when a project starts.
   */
  SUPAMANAGER_PORT_RANGE: z
    .string()
    .regex(/^\d{1,5}-\d{1,5}$/, "SUPAMANAGER_PORT_RANGE must look like 28000-28999")
    .transform((v) => v.split("-").map(Number) as [number, number])
    .refine(
      ([first, last]) => first >= 1024 && last <= 65535 && first <= last,
      "SUPAMANAGER_PORT_RANGE must be within 1024-65535 with first <= last",
    )
    .default([28000, 28999]),
  SUPAMANAGER_MAX_BODY_BYTES: positiveInt.default(1024 * 1024),
  /**
   * The domain projects' public URLs live under: `https://<ref>.<domain>` (docs/configuration.md).
   * Unset: a project's URL is its gateway's port on its host's bind address, as before.
   */
  SUPAMANAGER_PROJECTS_DOMAIN: domainName("SUPAMANAGER_PROJECTS_DOMAIN").optional(),
  /**
   * The domain the control plane's tunnel answers for (`<ref>.<domain>`, projects on hosts in
   * `tunnel` mode; ADR 0035). Default: the projects domain.
   */
  SUPAMANAGER_TUNNEL_DOMAIN: domainName("SUPAMANAGER_TUNNEL_DOMAIN").optional(),
  /** Largest request body relayed through the tunnel, in bytes (413 beyond). */
  SUPAMANAGER_TUNNEL_MAX_REQUEST_BYTES: positiveInt.default(100 * 1024 * 1024),
  /** Largest response body relayed through the tunnel, in bytes (the connection is cut beyond). */
  SUPAMANAGER_TUNNEL_MAX_RESPONSE_BYTES: positiveInt.default(1024 * 1024 * 1024),
  /** Seconds the tunnel waits for a project's response headers (504 after). */
  SUPAMANAGER_TUNNEL_RESPONSE_TIMEOUT_SECONDS: positiveInt.max(3600).default(60),
  /** Seconds a relayed stream may go without a byte either way before it is cut. */
  SUPAMANAGER_TUNNEL_IDLE_SECONDS: positiveInt.max(86400).default(300),
  /** Streams one host's tunnel carries at once (503 beyond). */
  SUPAMANAGER_TUNNEL_MAX_STREAMS: positiveInt.max(65536).default(256),
  /**
   * How the other replicas reach THIS one (`http://10.0.0.5:8080`), for requests to a tunnel host
   * whose data connection this replica holds (ADR 0035). Default: the listening address (the
   * first non-loopback IPv4 address when listening on every interface).
   */
  SUPAMANAGER_INTERNAL_URL: z.url().optional(),
  /**
   * Statement timeout of SQL run through /platform/pg-meta/{ref}/query (seconds). Members who may
   * write can lift it per query (`disable_statement_timeout`); see docs/data-plane.md.
   */
  SUPAMANAGER_SQL_STATEMENT_TIMEOUT_SECONDS: positiveInt.max(240).default(60),
  /** How often the Node entry runs backup maintenance (schedules, retention, stuck jobs), in seconds. */
  SUPAMANAGER_BACKUP_TICK_SECONDS: positiveInt.max(3600).default(60),
  /**
   * `deny`: organizations' backup targets may not point at loopback, private, link-local or other
   * non-public addresses (the control plane calls them). `allow`: any endpoint (docs/security.md).
   */
  SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: z.enum(["deny", "allow"]).default("deny"),
  /**
   * The host agent version every host should run (ADR 0040): agents on another version install it
   * and restart into it. Unset: agents are never told to update. Where it comes from: the npm
   * registry (SUPAMANAGER_AGENT_PACKAGE) or an operator's URL (SUPAMANAGER_AGENT_URL + checksum).
   */
  SUPAMANAGER_AGENT_VERSION: AgentVersion.optional(),
  /** The npm package holding the agent (a package packed by `npm run agent:pack`). */
  SUPAMANAGER_AGENT_PACKAGE: NpmPackageName.optional(),
  /** The npm registry the package is read from. */
  SUPAMANAGER_AGENT_REGISTRY: z
    .url({ protocol: /^https?$/, error: "SUPAMANAGER_AGENT_REGISTRY must be an http(s) URL" })
    .default("https://registry.npmjs.org"),
  /** Instead of the registry: the URL of the version's package tarball, with its checksum. */
  SUPAMANAGER_AGENT_URL: z
    .url({ protocol: /^https?$/, error: "SUPAMANAGER_AGENT_URL must be an http(s) URL" })
    .optional(),
  /** The tarball's sha256 in hex (what `sha256sum` prints). */
  SUPAMANAGER_AGENT_SHA256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "SUPAMANAGER_AGENT_SHA256 must be 64 hex digits")
    .optional(),
  /** Or its Subresource Integrity, `sha512-<base64>` (what `npm run agent:pack` and the registry print). */
  SUPAMANAGER_AGENT_INTEGRITY: PackageIntegrity.optional(),
  /** How long an updated agent has to reconnect before it rolls back to the version it ran. */
  SUPAMANAGER_AGENT_UPDATE_DEADLINE_SECONDS: z.coerce.number().int().min(5).max(3600).default(120),
  SUPAMANAGER_LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
});

export type Env = z.infer<typeof EnvSchema>;

/** The parsed configuration the app runs with. Secrets are resolved (never undefined). */
export interface Config {
  env: Env["NODE_ENV"];
  host: string;
  port: number;
  publicUrl: string | undefined;
  databaseUrl: string | undefined;
  databasePoolMax: number;
  dataDir: string;
  jwtSecret: string;
  encryptionKey: string;
  encryptionKeysOld: string[];
  corsOrigins: string[];
  allowSignup: boolean;
  admin: { email: string; password: string } | undefined;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  loginLimit: { windowSeconds: number; maxPerIp: number; maxPerEmail: number };
  trustProxy: boolean;
  /** Seconds a live dashboard session is reused without asking the database (0 = never). */
  sessionCheckSeconds: number;
  fleet: {
    hostOfflineSeconds: number;
    heartbeatSeconds: number;
    defaultRelease: string;
    releasesFile: string | undefined;
    localImagesFile: string | undefined;
    portRange: { first: number; last: number };
    /** Bytes of each host's memory never promised to projects. */
    hostReserveBytes: number;
    /** The agent version hosts should run and where to get it (sent in welcome); none: no updates. */
    agentUpdate: AgentUpdate | undefined;
  };
  maxBodyBytes: number;
  /**
   * Projects' public URLs (services/projects/urls.ts): `https://<ref>.<domain>`; the tunnel's
   * domain and limits (ADR 0035). Both domains undefined → URLs are host address and port.
   */
  projects: { domain: string | undefined; tunnelDomain: string | undefined };
  tunnel: {
    maxRequestBytes: number;
    maxResponseBytes: number;
    responseTimeoutMs: number;
    idleTimeoutMs: number;
    maxStreams: number;
    /** How other replicas reach this one (forwarded tunnel requests); undefined → listening address. */
    internalUrl: string | undefined;
  };
  /** SQL through the agent (pg-meta): the default statement timeout, in seconds. */
  sql: { statementTimeoutSeconds: number };
  /**
   * Backups: how often a runtime's timer runs maintenance (services/backups/maintenance.ts), and
   * whether organizations' targets may use non-public endpoints (services/backups/endpoint-guard.ts).
   */
  backups: { tickSeconds: number; privateEndpoints: Env["SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS"] };
  logLevel: Env["SUPAMANAGER_LOG_LEVEL"];
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parse the environment; throws ConfigError with every problem named by its variable. */
export function parseEnv(env: Record<string, string | undefined>): Env {
  // Empty strings mean "unset" so that `FOO= npm start` behaves like not setting FOO.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = EnvSchema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join(".") || "(env)"}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  const parsed = result.data;
  const agentProblem = agentUpdateProblem(parsed);
  if (agentProblem) throw new ConfigError(`Invalid configuration:\n  ${agentProblem}`);
  if ((parsed.SUPAMANAGER_ADMIN_EMAIL === undefined) !== (parsed.SUPAMANAGER_ADMIN_PASSWORD === undefined)) {
    throw new ConfigError(
      "Invalid configuration:\n  SUPAMANAGER_ADMIN_EMAIL and SUPAMANAGER_ADMIN_PASSWORD must be set together",
    );
  }
  return parsed;
}

/** The self-update settings go together: a version, and exactly one source with what verifies it. */
function agentUpdateProblem(env: Env): string | null {
  const sourceSet = env.SUPAMANAGER_AGENT_PACKAGE !== undefined || env.SUPAMANAGER_AGENT_URL !== undefined;
  if (env.SUPAMANAGER_AGENT_VERSION === undefined) {
    return sourceSet
      ? "SUPAMANAGER_AGENT_PACKAGE / SUPAMANAGER_AGENT_URL need SUPAMANAGER_AGENT_VERSION (the version hosts should run)"
      : null;
  }
  if (env.SUPAMANAGER_AGENT_PACKAGE !== undefined && env.SUPAMANAGER_AGENT_URL !== undefined) {
    return "set SUPAMANAGER_AGENT_PACKAGE (the npm registry) or SUPAMANAGER_AGENT_URL (a tarball), not both";
  }
  if (!sourceSet) {
    return "SUPAMANAGER_AGENT_VERSION needs SUPAMANAGER_AGENT_PACKAGE (an npm package) or SUPAMANAGER_AGENT_URL (a tarball) to get it from";
  }
  if (env.SUPAMANAGER_AGENT_URL !== undefined) {
    if ((env.SUPAMANAGER_AGENT_SHA256 === undefined) === (env.SUPAMANAGER_AGENT_INTEGRITY === undefined)) {
      return "SUPAMANAGER_AGENT_URL needs its checksum: SUPAMANAGER_AGENT_SHA256 or SUPAMANAGER_AGENT_INTEGRITY (one of them)";
    }
  } else if (env.SUPAMANAGER_AGENT_SHA256 !== undefined || env.SUPAMANAGER_AGENT_INTEGRITY !== undefined) {
    return "SUPAMANAGER_AGENT_SHA256 / SUPAMANAGER_AGENT_INTEGRITY go with SUPAMANAGER_AGENT_URL; the npm registry gives its own integrity";
  }
  return null;
}

/** Without Buffer: the config is also built on Workers. */
function hexToBase64(hex: string): string {
  const bytes = hex.match(/../g)?.map((b) => Number.parseInt(b, 16)) ?? [];
  return btoa(String.fromCharCode(...bytes));
}

function agentUpdate(env: Env): AgentUpdate | undefined {
  const version = env.SUPAMANAGER_AGENT_VERSION;
  if (version === undefined) return undefined;
  const deadlineSeconds = env.SUPAMANAGER_AGENT_UPDATE_DEADLINE_SECONDS;
  if (env.SUPAMANAGER_AGENT_URL !== undefined) {
    const integrity = env.SUPAMANAGER_AGENT_INTEGRITY ?? `sha256-${hexToBase64(env.SUPAMANAGER_AGENT_SHA256 ?? "")}`;
    return { version, source: { kind: "url", url: env.SUPAMANAGER_AGENT_URL, integrity }, deadlineSeconds };
  }
  return {
    version,
    source: { kind: "npm", registry: env.SUPAMANAGER_AGENT_REGISTRY, package: env.SUPAMANAGER_AGENT_PACKAGE ?? "" },
    deadlineSeconds,
  };
}

/** Secrets resolved by the entry (from the environment, or generated into the data directory). */
export interface ResolvedSecrets {
  jwtSecret: string;
  encryptionKey: string;
}

export function buildConfig(env: Env, secrets: ResolvedSecrets): Config {
  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    publicUrl: env.SUPAMANAGER_PUBLIC_URL,
    databaseUrl: env.DATABASE_URL,
    databasePoolMax: env.DATABASE_POOL_MAX,
    dataDir: env.SUPAMANAGER_DATA_DIR,
    jwtSecret: secrets.jwtSecret,
    encryptionKey: secrets.encryptionKey,
    encryptionKeysOld: env.SUPAMANAGER_ENCRYPTION_KEYS_OLD,
    corsOrigins: env.SUPAMANAGER_CORS_ORIGINS,
    allowSignup: env.SUPAMANAGER_ALLOW_SIGNUP,
    admin:
      env.SUPAMANAGER_ADMIN_EMAIL && env.SUPAMANAGER_ADMIN_PASSWORD
        ? { email: env.SUPAMANAGER_ADMIN_EMAIL, password: env.SUPAMANAGER_ADMIN_PASSWORD }
        : undefined,
    accessTokenTtlSeconds: env.SUPAMANAGER_ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: env.SUPAMANAGER_REFRESH_TOKEN_TTL_SECONDS,
    loginLimit: {
      windowSeconds: env.SUPAMANAGER_LOGIN_WINDOW_SECONDS,
      maxPerIp: env.SUPAMANAGER_LOGIN_MAX_PER_IP,
      maxPerEmail: env.SUPAMANAGER_LOGIN_MAX_PER_EMAIL,
    },
    trustProxy: env.SUPAMANAGER_TRUST_PROXY,
    sessionCheckSeconds: env.SUPAMANAGER_SESSION_CHECK_SECONDS,
    fleet: {
      hostOfflineSeconds: env.SUPAMANAGER_HOST_OFFLINE_SECONDS,
      heartbeatSeconds: env.SUPAMANAGER_HEARTBEAT_SECONDS,
      defaultRelease: env.SUPAMANAGER_RELEASE,
      releasesFile: env.SUPAMANAGER_RELEASES_FILE,
      localImagesFile: env.SUPAMANAGER_LOCAL_IMAGES_FILE,
      portRange: { first: env.SUPAMANAGER_PORT_RANGE[0], last: env.SUPAMANAGER_PORT_RANGE[1] },
      hostReserveBytes: env.SUPAMANAGER_HOST_MEMORY_RESERVE_MIB * 1024 * 1024,
      agentUpdate: agentUpdate(env),
    },
    maxBodyBytes: env.SUPAMANAGER_MAX_BODY_BYTES,
    projects: {
      domain: env.SUPAMANAGER_PROJECTS_DOMAIN,
      tunnelDomain: env.SUPAMANAGER_TUNNEL_DOMAIN ?? env.SUPAMANAGER_PROJECTS_DOMAIN,
    },
    tunnel: {
      maxRequestBytes: env.SUPAMANAGER_TUNNEL_MAX_REQUEST_BYTES,
      maxResponseBytes: env.SUPAMANAGER_TUNNEL_MAX_RESPONSE_BYTES,
      responseTimeoutMs: env.SUPAMANAGER_TUNNEL_RESPONSE_TIMEOUT_SECONDS * 1000,
      idleTimeoutMs: env.SUPAMANAGER_TUNNEL_IDLE_SECONDS * 1000,
      maxStreams: env.SUPAMANAGER_TUNNEL_MAX_STREAMS,
      internalUrl: env.SUPAMANAGER_INTERNAL_URL,
    },
    sql: { statementTimeoutSeconds: env.SUPAMANAGER_SQL_STATEMENT_TIMEOUT_SECONDS },
    backups: {
      tickSeconds: env.SUPAMANAGER_BACKUP_TICK_SECONDS,
      privateEndpoints: env.SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS,
    },
    logLevel: env.SUPAMANAGER_LOG_LEVEL,
  };
}
