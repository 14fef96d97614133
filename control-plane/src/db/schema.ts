import type { IngressStatus } from "@supamanager/shared";
import { sql } from "drizzle-orm";
import {
  type AnyPgColumn,
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

/**
 * The control plane's durable truth. Migrations in /migrations are generated from this file
 * by drizzle-kit (`npm run db:generate`); never edit them by hand.
 */

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true }).notNull().defaultNow();

/** Dashboard accounts. `email` is stored lower-cased. */
export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    email: text("email").notNull(),
    passwordHash: text("password_hash").notNull(),
    isInstanceAdmin: boolean("is_instance_admin").notNull().default(false),
    lastSignInAt: timestamp("last_sign_in_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("users_email_key").on(t.email)],
);

/** Studio's profile object; created on first read. `id` is the numeric id Studio shows. */
export const profiles = pgTable("profiles", {
  id: serial("id").primaryKey(),
  userId: uuid("user_id")
    .notNull()
    .unique()
    .references(() => users.id, { onDelete: "cascade" }),
  username: text("username").notNull(),
  firstName: text("first_name"),
  lastName: text("last_name"),
  mobile: text("mobile"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

/** A signed-in session; every refresh token of one login belongs to one session (its family). */
export const sessions = pgTable(
  "sessions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    aal: text("aal").notNull().default("aal1"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    createdAt: createdAt(),
    refreshedAt: timestamp("refreshed_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    revokedReason: text("revoked_reason"),
  },
  (t) => [index("sessions_user_id_idx").on(t.userId)],
);

/** Opaque refresh tokens, stored as SHA-256 hashes. A used token is `revoked` and has a child. */
export const refreshTokens = pgTable(
  "refresh_tokens",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tokenHash: text("token_hash").notNull(),
    sessionId: uuid("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    parentId: bigint("parent_id", { mode: "number" }),
    revoked: boolean("revoked").notNull().default(false),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex("refresh_tokens_token_hash_key").on(t.tokenHash),
    index("refresh_tokens_session_idx").on(t.sessionId),
  ],
);

/** Fixed-window counters for login rate limiting, shared by every replica. */
export const rateLimits = pgTable("rate_limits", {
  key: text("key").primaryKey(),
  windowStart: timestamp("window_start", { withTimezone: true }).notNull(),
  count: integer("count").notNull(),
});

export const organizations = pgTable(
  "organizations",
  {
    id: serial("id").primaryKey(),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    billingEmail: text("billing_email"),
    plan: text("plan").notNull().default("free"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("organizations_slug_key").on(t.slug)],
);

export const orgMembers = pgTable(
  "org_members",
  {
    orgId: integer("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: text("role", { enum: ["owner", "administrator", "developer", "read_only"] }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.userId] }),
    index("org_members_user_idx").on(t.userId),
    check("org_members_role_check", sql`${t.role} in ('owner', 'administrator', 'developer', 'read_only')`),
  ],
);

/**
 * Pending invitations to an organization (docs/roles.md, ADR 0026). One per e-mail address and
 * organization; accepting, declining or revoking deletes the row (the audit log keeps the story).
 * Only the SHA-256 of the token is stored. `email` is lower-cased and need not belong to an account.
 */
export const orgInvitations = pgTable(
  "org_invitations",
  {
    id: serial("id").primaryKey(),
    orgId: integer("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    role: text("role", { enum: ["owner", "administrator", "developer", "read_only"] }).notNull(),
    tokenHash: text("token_hash").notNull(),
    invitedBy: uuid("invited_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex("org_invitations_org_email_key").on(t.orgId, t.email),
    uniqueIndex("org_invitations_token_hash_key").on(t.tokenHash),
    index("org_invitations_email_idx").on(t.email),
    check("org_invitations_role_check", sql`${t.role} in ('owner', 'administrator', 'developer', 'read_only')`),
  ],
);

export const projects = pgTable(
  "projects",
  {
    id: serial("id").primaryKey(),
    ref: text("ref").notNull(),
    orgId: integer("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "restrict" }),
    name: text("name").notNull(),
    region: text("region").notNull(),
    cloudProvider: text("cloud_provider").notNull().default("SELF_HOSTED"),
    status: text("status").notNull(),
    /** Why the project is in a failed state, readable through the API. */
    statusReason: text("status_reason"),
    desiredState: text("desired_state", { enum: ["running", "paused", "deleted"] })
      .notNull()
      .default("running"),
    specVersion: integer("spec_version").notNull().default(1),
    computeSize: text("compute_size").notNull().default("nano"),
    /** The host the project was placed on (null until placed). */
    hostId: text("host_id").references(() => hosts.id, { onDelete: "restrict" }),
    /** The release (manifest of images and template) the project runs. */
    release: text("release").notNull().default("local"),
    /** The release's optional parts the project runs (null → the release's default parts). */
    parts: jsonb("parts").$type<string[]>(),
    /** The last spec version the agent reported applied (see reconciliation, ADR 8). */
    appliedVersion: integer("applied_version").notNull().default(0),
    /** Bumped by a restart request so the agent restarts even though the spec is unchanged. */
    restartNonce: integer("restart_nonce").notNull().default(0),
    /** Per-service health last reported by the agent: [{name, state, health}]. */
    health: jsonb("health").$type<{ name: string; state: string; health: string }[]>(),
    healthAt: timestamp("health_at", { withTimezone: true }),
    /** When the project last entered INACTIVE (Studio's pause/status). */
    pausedAt: timestamp("paused_at", { withTimezone: true }),
    /** The requested database password, AES-256-GCM encrypted (see crypto/aes.ts). */
    dbPassEncrypted: text("db_pass_encrypted").notNull(),
    /**
     * The `restore` job (a backup being restored in place) while it runs: health reports and
     * applies leave the RESTORING status alone until the job answers (services/backups/restore.ts).
     */
    restoreJobId: text("restore_job_id"),
    /**
     * The projects and tunnel domains (projectUrlDomains) the project's stack was last rendered
     * for: when an operator changes either, the next start bumps the spec version of every project
     * rendered for the old ones, so their agents re-render URLs such as API_EXTERNAL_URL.
     */
    urlDomains: text("url_domains"),
    /**
     * The upgrade (project_upgrades.id) holding the project while it runs: the control plane
     * sends no apply, and health reports and applies leave UPGRADING alone, until the upgrade
     * ends (services/upgrades/upgrade.ts).
     */
    upgradeId: integer("upgrade_id"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("projects_ref_key").on(t.ref),
    index("projects_org_created_idx").on(t.orgId, t.createdAt),
    index("projects_host_idx").on(t.hostId),
    check("projects_ref_check", sql`${t.ref} ~ '^[a-z]{20}$'`),
  ],
);

/**
 * Append-only audit trail. Written in the same transaction as the change it records;
 * sign-ins (successful or not) are recorded with `org_id` null.
 */
export const auditLog = pgTable(
  "audit_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    orgId: integer("org_id").references(() => organizations.id, { onDelete: "set null" }),
    projectRef: text("project_ref"),
    actorId: uuid("actor_id"),
    actorEmail: text("actor_email"),
    action: text("action").notNull(),
    target: text("target"),
    outcome: text("outcome", { enum: ["success", "failure"] }).notNull(),
    ip: text("ip"),
    userAgent: text("user_agent"),
    requestId: text("request_id"),
    details: jsonb("details").$type<Record<string, unknown>>(),
    createdAt: createdAt(),
  },
  (t) => [index("audit_log_org_created_idx").on(t.orgId, t.createdAt), index("audit_log_actor_idx").on(t.actorId)],
);

/** One-time (or few-times) tokens an instance admin creates to enroll Docker hosts in a region. */
export const joinTokens = pgTable(
  "join_tokens",
  {
    id: text("id").primaryKey(),
    tokenHash: text("token_hash").notNull(),
    region: text("region").notNull(),
    usesRemaining: integer("uses_remaining").notNull(),
    createdBy: uuid("created_by").references(() => users.id, { onDelete: "set null" }),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("join_tokens_token_hash_key").on(t.tokenHash)],
);

/**
 * Docker hosts running an agent. The credential is stored as a SHA-256 hash; removing a host
 * clears it (and the row stays for the audit trail).
 */
export const hosts = pgTable(
  "hosts",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    region: text("region").notNull(),
    credentialHash: text("credential_hash"),
    /** Interface the host publishes project ports on (loopback unless configured otherwise). */
    bindAddress: text("bind_address").notNull().default("127.0.0.1"),
    /**
     * How apps reach the host's projects (services/projects/urls.ts, ADR 0035): `direct` (the
     * published ports, or the operator's own proxy under the projects domain), `ingress` (a proxy
     * on the host), `tunnel` (through the control plane, for hosts behind NAT).
     */
    reachability: text("reachability", { enum: ["direct", "ingress", "tunnel"] })
      .notNull()
      .default("direct"),
    /**
     * The host ingress's state as its agent last reported it (IngressStatus: off | running | error,
     * projects served, port, message; ADR 0036); null before an agent reported one.
     */
    ingress: jsonb("ingress").$type<IngressStatus>(),
    agentVersion: text("agent_version"),
    /** The protocol version of the agent's hello (`v`): the control plane serves N and N−1 (ADR 0040). */
    agentProtocol: integer("agent_protocol"),
    /**
     * The agent's last self-update that did not take (hello.updateFailure): the version it tried,
     * why it is not running it, when. Null when the last update worked or none was tried.
     */
    agentUpdateFailure: jsonb("agent_update_failure").$type<{ version: string; reason: string; at: string }>(),
    compose: text("compose"),
    /** Random id of the agent PROCESS (hello.bootId): a change means its running jobs died. */
    bootId: text("boot_id"),
    cpus: integer("cpus"),
    memTotalBytes: bigint("mem_total_bytes", { mode: "number" }),
    memFreeBytes: bigint("mem_free_bytes", { mode: "number" }),
    memReservedBytes: bigint("mem_reserved_bytes", { mode: "number" }),
    load1: text("load1"),
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }),
    /**
     * The API Gateway WebSocket connection id of the agent's socket when the control plane runs on
     * AWS Lambda (entry/lambda-agent.ts, ADR 0017); null while disconnected and on other runtimes.
     */
    connectionId: text("connection_id"),
    cordoned: boolean("cordoned").notNull().default(false),
    draining: boolean("draining").notNull().default(false),
    removedAt: timestamp("removed_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("hosts_credential_hash_key").on(t.credentialHash),
    index("hosts_region_idx").on(t.region),
    uniqueIndex("hosts_connection_id_key").on(t.connectionId),
    check("hosts_reachability_check", sql`${t.reachability} in ('direct', 'ingress', 'tunnel')`),
  ],
);

/** Host ports held by projects; unique per host, so two projects can never bind the same port. */
export const portReservations = pgTable(
  "port_reservations",
  {
    hostId: text("host_id")
      .notNull()
      .references(() => hosts.id, { onDelete: "cascade" }),
    port: integer("port").notNull(),
    projectRef: text("project_ref").notNull(),
    service: text("service").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.hostId, t.port] }), index("port_reservations_project_idx").on(t.projectRef)],
);

/**
 * RPCs that cross a process boundary (services/fleet/rpc-mailbox.ts): a request made where the
 * agent's socket is not held (another Node replica, a Lambda invocation) is parked here with its
 * answer, so the process holding the socket, or the one receiving the agent's answer, can hand
 * it over. Rows live seconds; the waiter deletes its row.
 */
export const agentRpcs = pgTable(
  "agent_rpcs",
  {
    id: text("id").primaryKey(),
    hostId: text("host_id")
      .notNull()
      .references(() => hosts.id, { onDelete: "cascade" }),
    /** The rpc frame without envelope (RpcRequest); null when the requester sent it itself. */
    request: jsonb("request"),
    /** The agent's rpc_result frame, once answered. */
    result: jsonb("result"),
    createdAt: createdAt(),
    /**
     * When the replica holding the host's socket took a parked request (Node replicas, ADR 0014):
     * a requester withdraws a request nobody claimed within a short deadline (host offline).
     */
    claimedAt: timestamp("claimed_at", { withTimezone: true }),
    answeredAt: timestamp("answered_at", { withTimezone: true }),
  },
  (t) => [index("agent_rpcs_created_idx").on(t.createdAt)],
);

/**
 * Which Node replica holds a host's tunnel data connection (ADR 0035, "Several replicas"): the
 * replica's internal URL, written when it accepts the connection and removed when it closes. A
 * replica that receives a request for a project of this host but does not hold the connection
 * forwards the request there.
 */
export const hostTunnels = pgTable("host_tunnels", {
  hostId: text("host_id")
    .primaryKey()
    .references(() => hosts.id, { onDelete: "cascade" }),
  /** How other replicas reach the holder (SUPAMANAGER_INTERNAL_URL, or its listening address). */
  replicaUrl: text("replica_url").notNull(),
  connectedAt: timestamp("connected_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Imperative work for an agent (backups, restores, …): delivered at least once, de-duplicated by id. */
export const jobs = pgTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    projectRef: text("project_ref"),
    hostId: text("host_id").references(() => hosts.id, { onDelete: "set null" }),
    kind: text("kind").notNull(),
    params: jsonb("params").$type<Record<string, unknown>>().notNull().default({}),
    status: text("status", { enum: ["queued", "running", "succeeded", "failed"] })
      .notNull()
      .default("queued"),
    attempts: integer("attempts").notNull().default(0),
    leaseUntil: timestamp("lease_until", { withTimezone: true }),
    /** How long the job may run once delivered; lease_until = delivery time + this. */
    leaseMs: integer("lease_ms").notNull().default(21_600_000),
    idempotencyKey: text("idempotency_key"),
    result: jsonb("result"),
    error: text("error"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("jobs_idempotency_key").on(t.idempotencyKey),
    index("jobs_host_status_idx").on(t.hostId, t.status),
  ],
);

/**
 * A project's generated secrets (JWT secret, API keys, signing keys, service keys), one row per
 * variable name, each AES-256-GCM encrypted with the AAD `project:<ref>:secret:<NAME>`
 * (see services/secrets/ and docs/secrets.md). The database password stays in projects.db_pass_encrypted.
 */
export const projectSecrets = pgTable(
  "project_secrets",
  {
    projectRef: text("project_ref")
      .notNull()
      .references(() => projects.ref, { onDelete: "cascade" }),
    name: text("name").notNull(),
    valueEncrypted: text("value_encrypted").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.projectRef, t.name] })],
);

/**
 * A project's auth settings (services/auth-settings/): the non-secret fields as JSON, the SMTP
 * password encrypted with the SecretBox (associated data names the ref). No row → defaults.
 */
export const projectAuthSettings = pgTable("project_auth_settings", {
  projectRef: text("project_ref")
    .primaryKey()
    .references(() => projects.ref, { onDelete: "cascade" }),
  settings: jsonb("settings").$type<Record<string, unknown>>().notNull(),
  smtpPassEncrypted: text("smtp_pass_encrypted"),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
});

/**
 * A project's Edge Functions (services/edge-functions/, ADR 0032): what was deployed, kept here so
 * the API can list them and return their source, and so the agent can be given them again. The
 * files are JSON [{path, content (base64)}], bounded by the deploy's size limit.
 */
export const edgeFunctions = pgTable(
  "edge_functions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    projectRef: text("project_ref")
      .notNull()
      .references(() => projects.ref, { onDelete: "cascade" }),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    version: integer("version").notNull().default(1),
    verifyJwt: boolean("verify_jwt").notNull().default(true),
    entrypointPath: text("entrypoint_path").notNull(),
    importMapPath: text("import_map_path"),
    files: jsonb("files").$type<{ path: string; content: string }[]>().notNull(),
    /** SHA-256 hex over the files (paths and bytes), reported as ezbr_sha256. */
    sha256: text("sha256").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("edge_functions_project_slug_idx").on(t.projectRef, t.slug)],
);

/**
 * A project's function secrets: each value AES-256-GCM encrypted with the AAD
 * `project:<ref>:function-secret:<NAME>`; `digest` is the SHA-256 hex of the value, the only form
 * the API returns.
 */
export const edgeFunctionSecrets = pgTable(
  "edge_function_secrets",
  {
    projectRef: text("project_ref")
      .notNull()
      .references(() => projects.ref, { onDelete: "cascade" }),
    name: text("name").notNull(),
    valueEncrypted: text("value_encrypted").notNull(),
    digest: text("digest").notNull(),
    updatedAt: updatedAt(),
  },
  (t) => [primaryKey({ columns: [t.projectRef, t.name] })],
);

/**
 * Folders of saved SQL snippets (Studio's "content" folders). Folders are private: only their
 * owner sees them, and only private (`user`) snippets live in them (see services/content/).
 */
export const userContentFolders = pgTable(
  "user_content_folders",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    projectId: integer("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    ownerId: integer("owner_id")
      .notNull()
      .references(() => profiles.id, { onDelete: "cascade" }),
    parentId: uuid("parent_id").references((): AnyPgColumn => userContentFolders.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("user_content_folders_project_owner_idx").on(t.projectId, t.ownerId)],
);

/**
 * Saved SQL snippets, reports and log queries of a project (Studio's "content"). `user`
 * visibility: only the owner sees the row; `project`: every member of the project's organization.
 */
export const userContent = pgTable(
  "user_content",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    projectId: integer("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    ownerId: integer("owner_id")
      .notNull()
      .references(() => profiles.id, { onDelete: "cascade" }),
    updatedBy: integer("updated_by").references(() => profiles.id, { onDelete: "set null" }),
    folderId: uuid("folder_id").references(() => userContentFolders.id, { onDelete: "set null" }),
    type: text("type", { enum: ["sql", "report", "log_sql"] }).notNull(),
    visibility: text("visibility", { enum: ["user", "project"] }).notNull(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    content: jsonb("content").$type<Record<string, unknown>>().notNull(),
    favorite: boolean("favorite").notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("user_content_project_owner_idx").on(t.projectId, t.ownerId),
    index("user_content_project_visibility_idx").on(t.projectId, t.visibility),
    index("user_content_folder_idx").on(t.folderId),
    check("user_content_type_check", sql`${t.type} in ('sql', 'report', 'log_sql')`),
    check("user_content_visibility_check", sql`${t.visibility} in ('user', 'project')`),
  ],
);

/**
 * Personal access tokens (`sbp_` + 40 hex) for the Management API and CLIs. Only the SHA-256
 * hash is stored; `token_alias` is a display-only abbreviation. Revocation deletes the row.
 */
export const personalAccessTokens = pgTable(
  "personal_access_tokens",
  {
    id: text("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    tokenHash: text("token_hash").notNull(),
    tokenAlias: text("token_alias").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("personal_access_tokens_token_hash_key").on(t.tokenHash),
    index("personal_access_tokens_user_idx").on(t.userId),
  ],
);

/**
 * S3-compatible storage backups go to (ADR 0015): one per organization, or the instance's
 * (org_id null) used by organizations without their own. The secret access key, and the
 * client-side encryption key when encryption is on, are AES-256-GCM encrypted with AADs naming
 * the target (services/backups/targets.ts).
 */
export const backupTargets = pgTable(
  "backup_targets",
  {
    id: text("id").primaryKey(),
    orgId: integer("org_id").references(() => organizations.id, { onDelete: "cascade" }),
    /** Empty → AWS S3's regional endpoint. */
    endpoint: text("endpoint"),
    bucket: text("bucket").notNull(),
    /** Key prefix without leading or trailing slash ("" → the bucket's root). */
    prefix: text("prefix").notNull().default(""),
    region: text("region").notNull(),
    forcePathStyle: boolean("force_path_style").notNull().default(false),
    accessKeyId: text("access_key_id").notNull(),
    secretAccessKeyEncrypted: text("secret_access_key_encrypted").notNull(),
    /** Client-side encryption of new backups. The key stays after it is switched off (older backups need it). */
    encryptionEnabled: boolean("encryption_enabled").notNull().default(false),
    encryptionKeyEncrypted: text("encryption_key_encrypted"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  // One target per organization and one for the instance (org ids start at 1, so 0 is free).
  (t) => [uniqueIndex("backup_targets_owner_key").on(sql`coalesce(${t.orgId}, 0)`)],
);

/** One stored artifact of a backup (the object `<key_prefix>/<name>`). */
export interface BackupArtifactRow {
  name: string;
  /** Where it came from, as the release said at backup time (a restore puts it back there). */
  source: Record<string, unknown>;
  /** The multipart upload, until it is completed or aborted. */
  uploadId: string | null;
  sizeBytes: number | null;
  sha256: string | null;
}

/** Logical backups of projects. `id` is a number because Studio's backup list says so. */
export const backups = pgTable(
  "backups",
  {
    id: serial("id").primaryKey(),
    projectId: integer("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    projectRef: text("project_ref").notNull(),
    orgId: integer("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    /** Null once the target was deleted: the row stays for the history, the objects are out of reach. */
    targetId: text("target_id").references(() => backupTargets.id, { onDelete: "set null" }),
    status: text("status", { enum: ["PENDING", "RUNNING", "COMPLETED", "FAILED", "REMOVED"] }).notNull(),
    trigger: text("trigger", { enum: ["manual", "scheduled"] }).notNull(),
    /** `<target prefix>/<ref>/<id>`: every artifact is stored under it. */
    keyPrefix: text("key_prefix").notNull().default(""),
    artifacts: jsonb("artifacts").$type<BackupArtifactRow[]>().notNull().default([]),
    sizeBytes: bigint("size_bytes", { mode: "number" }),
    encrypted: boolean("encrypted").notNull().default(false),
    jobId: text("job_id"),
    error: text("error"),
    createdAt: createdAt(),
    completedAt: timestamp("completed_at", { withTimezone: true }),
  },
  (t) => [
    index("backups_project_created_idx").on(t.projectId, t.createdAt),
    index("backups_status_idx").on(t.status),
    uniqueIndex("backups_job_key").on(t.jobId),
  ],
);

/** A project's automatic backups: every `interval_hours`, keeping what the retention allows. */
export const backupSchedules = pgTable("backup_schedules", {
  projectId: integer("project_id")
    .primaryKey()
    .references(() => projects.id, { onDelete: "cascade" }),
  enabled: boolean("enabled").notNull().default(true),
  intervalHours: integer("interval_hours").notNull(),
  /** Keep at most this many COMPLETED backups (null → no count limit). */
  retentionCount: integer("retention_count"),
  /** Remove COMPLETED backups older than this (null → no age limit). */
  retentionDays: integer("retention_days"),
  nextRunAt: timestamp("next_run_at", { withTimezone: true }).notNull(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

/**
 * Restores of a backup into a project: in place (RUNNING at once), or into a new project created
 * for it (WAITING until that project is ACTIVE_HEALTHY; the maintenance tick starts it).
 */
export const backupRestores = pgTable(
  "backup_restores",
  {
    id: serial("id").primaryKey(),
    backupId: integer("backup_id")
      .notNull()
      .references(() => backups.id, { onDelete: "cascade" }),
    /** The project restored INTO. */
    projectId: integer("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    projectRef: text("project_ref").notNull(),
    orgId: integer("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    status: text("status", { enum: ["WAITING", "RUNNING", "COMPLETED", "FAILED"] }).notNull(),
    jobId: text("job_id"),
    error: text("error"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("backup_restores_status_idx").on(t.status), uniqueIndex("backup_restores_job_key").on(t.jobId)],
);

/**
 * Upgrades of a project from one release to another (docs/upgrades.md, ADR 0037): a backup
 * first, then the agent's `upgrade` job; the row records where the procedure is and how it ended.
 */
export const projectUpgrades = pgTable(
  "project_upgrades",
  {
    id: serial("id").primaryKey(),
    projectId: integer("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    projectRef: text("project_ref").notNull(),
    orgId: integer("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    fromRelease: text("from_release").notNull(),
    toRelease: text("to_release").notNull(),
    status: text("status", { enum: ["RUNNING", "COMPLETED", "ROLLED_BACK", "FAILED"] }).notNull(),
    step: text("step").notNull(),
    /** The backup taken first (null when the upgrade was allowed without one). */
    backupId: integer("backup_id").references(() => backups.id, { onDelete: "set null" }),
    jobId: text("job_id"),
    error: text("error"),
    /** What the agent measured before and after (row counts, extensions, …), for the record. */
    report: jsonb("report").$type<Record<string, unknown>>(),
    createdBy: uuid("created_by"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("project_upgrades_project_idx").on(t.projectId, t.createdAt),
    index("project_upgrades_status_idx").on(t.status),
    uniqueIndex("project_upgrades_job_key").on(t.jobId),
  ],
);

/**
 * Fleet-wide upgrades (docs/upgrades-api.md, ADR 0039): every project on `from_release` of an
 * organization and/or a region, moved to `to_release` one canary first, then `parallel` at a
 * time, stopping at the first failure. The maintenance tick advances it (lease_until keeps two
 * replicas from advancing the same rollout at once), so it survives a restart.
 */
export const upgradeRollouts = pgTable(
  "upgrade_rollouts",
  {
    id: serial("id").primaryKey(),
    fromRelease: text("from_release").notNull(),
    toRelease: text("to_release").notNull(),
    orgId: integer("org_id").references(() => organizations.id, { onDelete: "set null" }),
    orgSlug: text("org_slug"),
    region: text("region"),
    parallel: integer("parallel").notNull(),
    allowWithoutBackup: boolean("allow_without_backup").notNull().default(false),
    status: text("status", { enum: ["RUNNING", "STOPPING", "COMPLETED", "STOPPED"] }).notNull(),
    /** Why it stopped (the failed project, or the operator). */
    stopReason: text("stop_reason"),
    /** A replica advancing it holds it until then (crash → another takes over after it). */
    leaseUntil: timestamp("lease_until", { withTimezone: true }),
    createdBy: uuid("created_by"),
    createdByEmail: text("created_by_email"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [index("upgrade_rollouts_status_idx").on(t.status)],
);

/** The projects of a rollout, in the order they are started (position 0 is tried first: the canary). */
export const upgradeRolloutProjects = pgTable(
  "upgrade_rollout_projects",
  {
    id: serial("id").primaryKey(),
    rolloutId: integer("rollout_id")
      .notNull()
      .references(() => upgradeRollouts.id, { onDelete: "cascade" }),
    position: integer("position").notNull(),
    projectId: integer("project_id").references(() => projects.id, { onDelete: "set null" }),
    projectRef: text("project_ref").notNull(),
    orgSlug: text("org_slug"),
    region: text("region").notNull(),
    status: text("status", {
      enum: ["PENDING", "STARTING", "RUNNING", "COMPLETED", "ROLLED_BACK", "FAILED", "SKIPPED"],
    }).notNull(),
    /** The project's upgrade (project_upgrades.id) once started. */
    upgradeId: integer("upgrade_id"),
    /** Why it was skipped, or how its upgrade failed. */
    error: text("error"),
    startedAt: timestamp("started_at", { withTimezone: true }),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("upgrade_rollout_projects_position_key").on(t.rolloutId, t.position),
    index("upgrade_rollout_projects_upgrade_idx").on(t.upgradeId),
  ],
);
