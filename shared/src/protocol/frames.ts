import { z } from "zod";
import { ProjectRef } from "../ids.js";
import { DesiredState } from "../project-status.js";

/**
 * The agent channel's wire protocol: small JSON frames `{ v, type, … }` over a WebSocket, validated
 * by these schemas on BOTH sides. Large payloads (backups) never travel here.
 * See docs/protocol.md for the conversation.
 */

/** Bumped on incompatible changes; a peer speaking another version gets an `error` frame. */
export const PROTOCOL_VERSION = 1;

/**
 * The oldest protocol an agent may speak and still be served: N−1 (ADR 0040), so a control plane
 * upgraded first keeps the fleet's agents connected (and updatable) until they catch up. The
 * control plane answers each agent in the version of its hello; older agents are refused with
 * `unsupported_version`. Never below 1, the first version.
 */
export const MIN_AGENT_PROTOCOL_VERSION = Math.max(1, PROTOCOL_VERSION - 1);

/** Largest frame either side accepts, in bytes of UTF-8 JSON. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/**
 * Largest upstream answer an agent puts into an `rpc_result` (bytes of the service's response
 * body). Leaves a margin under MAX_FRAME_BYTES for the frame's own fields and JSON escaping; a
 * bigger answer is replaced by an error (`code: "too_large"`), never by a frame the peer refuses.
 */
export const MAX_RPC_RESULT_BYTES = MAX_FRAME_BYTES - 256 * 1024;

/** The frame's protocol version; the codec checks which ones this peer accepts. */
const v = z.number().int().min(1);
const Id = z.string().min(1).max(128);
const ServiceName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, "a service name is lowercase letters, digits and dashes");
const Bytes = z.number().int().nonnegative();

/** Resources the host can give to projects, reported on hello and each heartbeat. */
export const Capacity = z.object({
  cpus: z.number().int().positive(),
  memTotalBytes: Bytes,
  memFreeBytes: Bytes,
  /** Memory promised to the projects the agent runs (their limits), so placement can count it. */
  memReservedBytes: Bytes.default(0),
  load1: z.number().nonnegative(),
});
export type Capacity = z.infer<typeof Capacity>;

/**
 * The Docker network the host ingress (ADR 0036) shares with each project's gateway: the agent
 * creates it, the ingress joins it, and a stack rendered for an ingress host attaches its gateway
 * service to it (external, by this name).
 */
export const INGRESS_NETWORK = "supamanager-ingress";

/**
 * The state of the host's ingress, reported by the agent on hello and heartbeats (absent: an
 * agent without an ingress, or an older one). `off`: no project asks for it; `running`: the proxy
 * serves `projects` routes; `error`: it should run and does not (`message` says why and what to do).
 */
export const IngressStatus = z.object({
  state: z.enum(["off", "running", "error"]),
  projects: z.number().int().nonnegative(),
  /** The TLS port the proxy listens on, on the host's ingress address. */
  port: z.number().int().min(1).max(65535).optional(),
  message: z.string().max(1000).optional(),
});
export type IngressStatus = z.infer<typeof IngressStatus>;

/** What the agent believes it runs. */
export const InventoryItem = z.object({
  ref: ProjectRef,
  appliedVersion: z.number().int().nonnegative(),
  state: z.enum(["running", "paused", "deleted", "failed", "unknown"]),
});
export type InventoryItem = z.infer<typeof InventoryItem>;

export const ServiceHealth = z.object({
  name: ServiceName,
  /** Docker's container state: created, running, restarting, exited, paused, dead, missing. */
  state: z.enum(["created", "running", "restarting", "exited", "paused", "dead", "removing", "missing"]),
  /** Docker's health check status; `none` when the service has no health check. */
  health: z.enum(["starting", "healthy", "unhealthy", "none"]),
});
export type ServiceHealth = z.infer<typeof ServiceHealth>;

// ─── agent → control plane ───────────────────────────────────────────────────────────────────

export const Hello = z.object({
  v,
  type: z.literal("hello"),
  agentVersion: z.string().max(64),
  hostname: z.string().min(1).max(255),
  compose: z.enum(["v2", "v1"]),
  capacity: Capacity,
  inventory: z.array(InventoryItem).max(10_000),
  /**
   * Random per agent process. The control plane re-sends jobs still running to the same process
   * after a reconnect, and fails them when the process changed (their work died with it).
   */
  bootId: Id.optional(),
  ingress: IngressStatus.optional(),
  /**
   * The last self-update of this agent that did not take (ADR 0040): the version it tried and why
   * it is still on this one (a bad checksum, the new version did not reconnect in time and was
   * rolled back, …). Absent when the last update worked or none was tried.
   */
  updateFailure: z
    .object({
      version: z.string().min(1).max(64),
      reason: z.string().min(1).max(1000),
      at: z.iso.datetime(),
    })
    .optional(),
});
export type Hello = z.infer<typeof Hello>;

export const Heartbeat = z.object({
  v,
  type: z.literal("heartbeat"),
  capacity: Capacity,
  ingress: IngressStatus.optional(),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

export const Applied = z.object({
  v,
  type: z.literal("applied"),
  ref: ProjectRef,
  version: z.number().int().nonnegative(),
  desiredState: DesiredState,
  ok: z.boolean(),
  /** Why the apply failed, for the API to show (`status_reason`). */
  error: z.string().max(4000).optional(),
});
export type Applied = z.infer<typeof Applied>;

export const Health = z.object({
  v,
  type: z.literal("health"),
  ref: ProjectRef,
  services: z.array(ServiceHealth).max(64),
});
export type Health = z.infer<typeof Health>;

export const JobResult = z.object({
  v,
  type: z.literal("job_result"),
  jobId: Id,
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().max(4000).optional(),
});
export type JobResult = z.infer<typeof JobResult>;

export const RpcResult = z.object({
  v,
  type: z.literal("rpc_result"),
  id: Id,
  /** HTTP status of the upstream answer, when there was one. */
  status: z.number().int().min(100).max(599).optional(),
  body: z.unknown().optional(),
  /** The upstream answer's content type (the body is parsed JSON for JSON answers, else text). */
  contentType: z.string().max(255).optional(),
  /**
   * `base64`: `body` is the upstream body's raw bytes as base64 text (the rpc asked for
   * `resultEncoding: "base64"`). An agent that does not know the request field never sets it.
   */
  bodyEncoding: z.literal("base64").optional(),
  error: z.string().max(4000).optional(),
  /**
   * Why there is no upstream answer, when `error` is set: `timeout`, `too_large`, `unreachable`
   * (connection refused, reset, …), `refused` (unknown project or service, bad request). A string,
   * so a newer agent's codes do not make an older control plane refuse the frame.
   */
  code: z.string().max(64).optional(),
});
export type RpcResult = z.infer<typeof RpcResult>;

// ─── control plane → agent ───────────────────────────────────────────────────────────────────

const HttpUrl = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/[^\s]+$/, "must be an http(s) URL");

/**
 * Subresource Integrity of a package tarball: `sha512-<base64>` (what the npm registry gives as
 * `dist.integrity`) or `sha256-<base64>` (an operator's sha256 checksum, converted).
 */
export const PackageIntegrity = z
  .string()
  .max(200)
  .regex(/^sha(256|512)-[A-Za-z0-9+/]+={0,2}$/, "must be sha256-<base64> or sha512-<base64>");

/** A version string as npm writes it (semver, with an optional pre-release or build part). */
export const AgentVersion = z
  .string()
  .max(64)
  .regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/, "must be a version such as 1.2.3");

/** An npm package name, scoped or not. */
export const NpmPackageName = z
  .string()
  .max(214)
  .regex(/^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/, "must be an npm package name");

/**
 * The agent version the control plane wants on its hosts, and where to get it (ADR 0040): the
 * npm registry (the version's `dist.tarball`, checked against its `dist.integrity`), or a URL the
 * operator set with its checksum.
 */
export const AgentUpdate = z.object({
  version: AgentVersion,
  source: z.discriminatedUnion("kind", [
    z.object({
      kind: z.literal("npm"),
      registry: HttpUrl,
      package: NpmPackageName,
    }),
    z.object({ kind: z.literal("url"), url: HttpUrl, integrity: PackageIntegrity }),
  ]),
  /** How long the new version has to reconnect before the agent rolls back to the one it ran. */
  deadlineSeconds: z.number().int().min(5).max(3600),
});
export type AgentUpdate = z.infer<typeof AgentUpdate>;

export const Welcome = z.object({
  v,
  type: z.literal("welcome"),
  hostId: Id,
  heartbeatIntervalMs: z.number().int().positive(),
  /**
   * The host is in `tunnel` mode and this control plane relays its projects' traffic: open the
   * data connection (/agent/v1/tunnel, ADR 0035). Absent or false: close it if open.
   */
  tunnel: z.boolean().optional(),
  /**
   * The agent version this control plane wants (ADR 0040). An agent running another version
   * installs it and restarts into it; absent: keep running what runs. Older agents ignore it.
   */
  agentUpdate: AgentUpdate.optional(),
});
export type Welcome = z.infer<typeof Welcome>;

/** A file of a rendered stack, relative to the project's directory. */
export const StackFile = z.object({
  path: z
    .string()
    .min(1)
    .max(255)
    .regex(
      /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._/-]+$/,
      "a stack file path is relative and stays inside the project",
    ),
  content: z.string().max(1024 * 1024),
  mode: z.number().int().min(0).max(0o777).default(0o600),
});
export type StackFile = z.infer<typeof StackFile>;

/** Everything the agent needs to run a project: rendered by the control plane from a release. */
export const Stack = z.object({
  release: z.string().min(1).max(64),
  composeFile: z
    .string()
    .min(1)
    .max(1024 * 1024),
  env: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/), z.string().max(65536)),
  files: z.array(StackFile).max(64).default([]),
  /** Services that must be healthy for the project to be ACTIVE_HEALTHY. */
  requiredServices: z.array(ServiceName).max(64),
  /**
   * Where the agent reaches the project's HTTP services for `rpc` frames: name → base URL on the
   * host's bind address (a published port, never a container IP), e.g. `meta` →
   * `http://127.0.0.1:54003`. Absent (older control planes) → none: every rpc is refused.
   */
  endpoints: z
    .record(
      ServiceName,
      z
        .string()
        .max(2048)
        .regex(/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/, "an endpoint is an http(s) base URL without query or fragment"),
    )
    .default({}),
  /**
   * The host serves this project through its ingress (ADR 0036): route `hostname` to `upstream`
   * (the gateway container on INGRESS_NETWORK, `name:port`), and reach the gateway for rpcs
   * through the ingress under the endpoint name `endpoint` (its port is no longer published).
   * Absent: the project is reached on its published ports (older control planes, direct hosts).
   */
  ingress: z
    .object({
      hostname: z
        .string()
        .max(253)
        .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "a lowercase DNS name"),
      upstream: z
        .string()
        .max(300)
        .regex(/^[a-z0-9][a-z0-9_.-]{0,252}:\d{1,5}$/, "a container name and port"),
      endpoint: ServiceName,
    })
    .optional(),
});
export type Stack = z.infer<typeof Stack>;

export const Apply = z.object({
  v,
  type: z.literal("apply"),
  ref: ProjectRef,
  version: z.number().int().nonnegative(),
  desiredState: DesiredState,
  /** Absent when the desired state is `deleted`. */
  stack: Stack.optional(),
  /** A restart request: stop and start again even if the version is already applied. */
  restartNonce: z.number().int().nonnegative().default(0),
});
export type Apply = z.infer<typeof Apply>;

export const Job = z.object({
  v,
  type: z.literal("job"),
  jobId: Id,
  kind: z.string().min(1).max(64),
  ref: ProjectRef.optional(),
  params: z.record(z.string(), z.unknown()).default({}),
});
export type Job = z.infer<typeof Job>;

/**
 * A request the agent forwards to one of a project's services (e.g. postgres-meta) and answers.
 *
 * Reserved service name `docker-logs` (DOCKER_LOGS_SERVICE): not forwarded anywhere; the agent
 * itself answers `GET /logs?tail=<1..1000>[&service=<name>]` with the last `tail` lines of the
 * project's own containers (label com.docker.compose.project=<ref>, optionally one Compose
 * service), as `status: 200` and `body: {lines: [{service, stream, text, timestamp?}]}`
 * (DockerLogsBody), bounded to DOCKER_LOGS_MAX_BYTES of text. See docs/agent.md.
 *
 * Reserved service name `docker-stats` (DOCKER_STATS_SERVICE): answered by the agent itself,
 * `GET /stats` → one resource sample of the project's own running containers (DockerStatsBody).
 */
export const Rpc = z.object({
  v,
  type: z.literal("rpc"),
  id: Id,
  ref: ProjectRef,
  service: ServiceName,
  method: z.enum(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
  path: z.string().startsWith("/").max(4096),
  headers: z.record(z.string(), z.string()).default({}),
  body: z.unknown().optional(),
  timeoutMs: z.number().int().positive().max(300_000),
  /**
   * The largest `rpc_result` frame (bytes of UTF-8 JSON) the control plane can receive, when it is
   * less than MAX_FRAME_BYTES: behind API Gateway (ADR 0017) a message may not exceed 128 KiB. The
   * agent answers a bigger result with `code: "too_large"` instead of sending it. Absent: the
   * protocol's own limit.
   */
  maxResultBytes: z.number().int().min(4096).max(MAX_FRAME_BYTES).optional(),
  /**
   * `base64`: answer the upstream body as base64 of its raw bytes, whatever its content type
   * (binary downloads such as Storage objects), with `bodyEncoding: "base64"` in the result.
   */
  resultEncoding: z.literal("base64").optional(),
});
export type Rpc = z.infer<typeof Rpc>;

/** The reserved rpc service name the agent answers itself with container logs (see Rpc). */
export const DOCKER_LOGS_SERVICE = "docker-logs";
/** Most lines one docker-logs rpc may ask for. */
export const DOCKER_LOGS_MAX_TAIL = 1000;
/** Most text (bytes, all lines together) in one docker-logs answer: well under MAX_FRAME_BYTES. */
export const DOCKER_LOGS_MAX_BYTES = 1024 * 1024;
/** One container log line of a docker-logs answer. */
export interface DockerLogLine {
  service: string;
  stream: "stdout" | "stderr";
  text: string;
  /** RFC 3339, from Docker's timestamps, when it gave one. */
  timestamp?: string;
}
/** The body of a docker-logs rpc_result. */
export interface DockerLogsBody {
  lines: DockerLogLine[];
  /** True when lines were dropped to stay under DOCKER_LOGS_MAX_BYTES. */
  truncated?: boolean;
}

/**
 * The reserved rpc service name the agent answers itself with a one-shot resource sample of the
 * project's own running containers: `GET /stats` → `status: 200`, `body: DockerStatsBody`.
 */
export const DOCKER_STATS_SERVICE = "docker-stats";
/** One running container of a docker-stats answer (one Docker stats sample). */
export interface DockerContainerStats {
  /** The Compose service the container runs. */
  service: string;
  /** CPU used over the sample, in percent of ONE host CPU (200 = two CPUs busy). */
  cpuPercent: number;
  /** Memory in use, page cache excluded (bytes). */
  memoryBytes: number;
  /** The container's memory limit, or the host's memory when it has none (bytes). */
  memoryLimitBytes: number;
}
/** The body of a docker-stats rpc_result. */
export interface DockerStatsBody {
  containers: DockerContainerStats[];
  /** CPUs the host has (to turn cpuPercent into a share of the host). */
  hostCpus: number;
}

// ─── both directions ─────────────────────────────────────────────────────────────────────────

export const ErrorFrame = z.object({
  v,
  type: z.literal("error"),
  code: z.enum(["bad_frame", "unsupported_version", "too_large", "unauthorized", "out_of_order", "internal"]),
  message: z.string().max(4000),
});
export type ErrorFrame = z.infer<typeof ErrorFrame>;

export const AgentFrame = z.discriminatedUnion("type", [
  Hello,
  Heartbeat,
  Applied,
  Health,
  JobResult,
  RpcResult,
  ErrorFrame,
]);
export type AgentFrame = z.infer<typeof AgentFrame>;

export const ServerFrame = z.discriminatedUnion("type", [Welcome, Apply, Job, Rpc, ErrorFrame]);
export type ServerFrame = z.infer<typeof ServerFrame>;
