import {
  DOCKER_LOGS_MAX_TAIL,
  DOCKER_LOGS_SERVICE,
  DOCKER_STATS_SERVICE,
  type DockerLogLine,
  type DockerLogsBody,
  type DockerStatsBody,
  EDGE_FUNCTIONS_SERVICE,
  MAX_FRAME_BYTES,
  MAX_RPC_RESULT_BYTES,
  PROTOCOL_VERSION,
  type Rpc,
  type RpcResult,
} from "@supamanager/shared";
import type { Logger } from "../log.js";
import { lastLines } from "../runtime/logs.js";
import { type EdgeFunctionsRuntime, edgeFunctionsRpc } from "./edge-functions.js";

/** What the forwarder needs to know about a project: its desired state and service endpoints. */
export interface ProjectEndpoints {
  desiredState: string;
  endpoints: Record<string, string>;
}

export interface RpcForwarderOptions {
  /** The project's last applied state (null: the agent does not run it). */
  project: (ref: string) => Promise<ProjectEndpoints | null>;
  logger: Logger;
  /** The host's bind address: endpoints on any other host are refused (null: not checked). */
  bindAddress?: string | null;
  /**
   * Origins the agent itself set up, accepted besides the bind address: the host ingress's
   * loopback listener (ADR 0036), through which gateways that publish no port are reached.
   */
  localOrigins?: readonly string[];
  /** Largest upstream body put into a result (default MAX_RPC_RESULT_BYTES). */
  maxResultBytes?: number;
  fetch?: typeof fetch;
  /** Reads a project's container logs (the reserved `docker-logs` service); absent: refused. */
  logs?: (ref: string, opts: { service?: string | undefined; tail: number }) => Promise<DockerLogLine[]>;
  /** Samples a project's running containers (the reserved `docker-stats` service); absent: refused. */
  stats?: (ref: string) => Promise<DockerStatsBody>;
  /** Writes Edge Functions into a project's functions volume (the reserved `edge-functions` service). */
  edgeFunctions?: EdgeFunctionsRuntime;
}

/** Request headers never forwarded: they belong to the hop, not to the request. */
const HOP_HEADERS = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-authorization",
  "proxy-connection",
]);

type Failure = { code: "timeout" | "too_large" | "unreachable" | "refused"; error: string };

/**
 * Forwards `rpc` frames to a project's HTTP services and answers `rpc_result`. A service is
 * reached only through the endpoint its stack declared (a port published on the host's bind
 * address, docs/data-plane.md); unknown projects, paused projects and unknown services are
 * refused. The request's timeout is enforced here, and an answer bigger than the result limit
 * becomes an error instead of a frame the control plane would refuse. Bodies and headers are
 * never logged: they carry SQL, rows and keys.
 */
export class RpcForwarder {
  private readonly maxResultBytes: number;
  private readonly fetch: typeof fetch;
  private inflight = 0;

  constructor(private readonly opts: RpcForwarderOptions) {
    this.maxResultBytes = Math.min(opts.maxResultBytes ?? MAX_RPC_RESULT_BYTES, MAX_RPC_RESULT_BYTES);
    this.fetch = opts.fetch ?? fetch;
  }

  /** Requests being forwarded right now. */
  get active(): number {
    return this.inflight;
  }

  /** Answer one rpc (never rejects). */
  async handle(rpc: Rpc): Promise<RpcResult> {
    const started = Date.now();
    this.inflight++;
    let out: RpcResult;
    try {
      out = await this.forward(rpc);
    } catch (err) {
      out = fail(rpc, {
        code: "unreachable",
        error: `agent error: ${err instanceof Error ? err.message : String(err)}`,
      });
    } finally {
      this.inflight--;
    }
    const fields = {
      id: rpc.id,
      ref: rpc.ref,
      service: rpc.service,
      method: rpc.method,
      // The path without its query string; never the headers or the body.
      path: rpc.path.split("?")[0],
      status: out.status,
      code: out.code,
      ms: Date.now() - started,
    };
    if (out.code === "too_large") this.opts.logger.info("rpc result too large", { ...fields, error: out.error });
    else if (out.code) this.opts.logger.warn("rpc failed", { ...fields, error: out.error });
    else this.opts.logger.debug("rpc", fields);
    return out;
  }

  private async forward(rpc: Rpc): Promise<RpcResult> {
    const project = await this.opts.project(rpc.ref);
    if (!project) return fail(rpc, { code: "refused", error: `this host does not run project ${rpc.ref}` });
    // The reserved docker-logs service: answered here from the project's own containers, in any
    // desired state (a failed or paused project's logs are the ones most wanted).
    if (rpc.service === DOCKER_LOGS_SERVICE) return this.dockerLogs(rpc);
    if (rpc.service === DOCKER_STATS_SERVICE) return this.dockerStats(rpc);
    if (project.desiredState !== "running") {
      return fail(rpc, { code: "refused", error: `project ${rpc.ref} is ${project.desiredState}, not running` });
    }
    if (rpc.service === EDGE_FUNCTIONS_SERVICE) {
      const runtime = this.opts.edgeFunctions;
      if (!runtime) return fail(rpc, { code: "refused", error: "this agent does not write Edge Functions" });
      return edgeFunctionsRpc(rpc, runtime);
    }
    const base = project.endpoints[rpc.service];
    if (!base) {
      return fail(rpc, {
        code: "refused",
        error: `project ${rpc.ref} has no endpoint for service "${rpc.service}" on this host`,
      });
    }
    const url = this.target(base, rpc.path);
    if (typeof url !== "object") return fail(rpc, { code: "refused", error: url });

    const headers = new Headers();
    for (const [k, v] of Object.entries(rpc.headers)) {
      if (!HOP_HEADERS.has(k.toLowerCase())) headers.set(k, v);
    }
    const hasBody = rpc.body !== undefined && rpc.method !== "GET" && rpc.method !== "HEAD";
    if (hasBody && !headers.has("content-type")) headers.set("content-type", "application/json");
    if (!headers.has("accept")) headers.set("accept", "application/json");

    const signal = AbortSignal.timeout(rpc.timeoutMs);
    const timedOut: Failure = {
      code: "timeout",
      error: `service "${rpc.service}" did not answer within ${rpc.timeoutMs} ms`,
    };
    let res: Response;
    try {
      res = await this.fetch(url, {
        method: rpc.method,
        headers,
        redirect: "manual",
        signal,
        ...(hasBody ? { body: typeof rpc.body === "string" ? rpc.body : JSON.stringify(rpc.body) } : {}),
      });
    } catch (err) {
      if (signal.aborted) return fail(rpc, timedOut);
      return fail(rpc, { code: "unreachable", error: `service "${rpc.service}" is unreachable: ${describe(err)}` });
    }
    const contentType = res.headers.get("content-type") ?? undefined;
    const limits = this.limits(rpc);
    // base64 grows a body by 4/3: the raw bytes must fit the frame once encoded.
    const base64 = rpc.resultEncoding === "base64";
    const bodyLimit = base64 ? Math.floor((limits.body * 3) / 4) : limits.body;
    const read = await this.readBody(res, signal, bodyLimit);
    if (read.kind === "timeout") return fail(rpc, timedOut);
    if (read.kind === "error") {
      return fail(rpc, { code: "unreachable", error: `reading the answer of "${rpc.service}" failed: ${read.error}` });
    }
    if (read.kind === "too_large") {
      return fail(rpc, {
        code: "too_large",
        error: `result too large (${read.bytes} bytes, the limit is ${bodyLimit}); add a LIMIT`,
      });
    }
    const result: RpcResult = { v: PROTOCOL_VERSION, type: "rpc_result", id: rpc.id, status: res.status };
    if (contentType) result.contentType = contentType.slice(0, 255);
    if (base64) {
      result.body = read.data.toString("base64");
      result.bodyEncoding = "base64";
    } else if (read.data.length > 0) {
      const text = read.data.toString("utf8");
      if (contentType && /\bjson\b/i.test(contentType)) {
        try {
          result.body = JSON.parse(text);
        } catch {
          result.body = text;
        }
      } else {
        result.body = text;
      }
    }
    // The body was within the limit, but re-encoding can grow it (escapes): check the frame itself.
    const frameBytes = Buffer.byteLength(JSON.stringify(result), "utf8");
    if (frameBytes > limits.frame) {
      return fail(rpc, {
        code: "too_large",
        error: `result too large (${frameBytes} bytes as a frame, the limit is ${limits.frame}); add a LIMIT`,
      });
    }
    return result;
  }

  /** `GET /logs?tail=<1..1000>[&service=<name>]` → `{lines, truncated?}`; log text is never logged. */
  private async dockerLogs(rpc: Rpc): Promise<RpcResult> {
    const logs = this.opts.logs;
    if (!logs) return fail(rpc, { code: "refused", error: "this agent does not serve container logs" });
    if (rpc.method !== "GET") return fail(rpc, { code: "refused", error: "docker-logs answers GET only" });
    const [path, qs = ""] = rpc.path.split("?", 2);
    if (path !== "/logs") return fail(rpc, { code: "refused", error: "docker-logs serves /logs only" });
    const params = new URLSearchParams(qs);
    const tailText = params.get("tail") ?? "100";
    const tail = /^\d{1,4}$/.test(tailText) ? Number(tailText) : Number.NaN;
    if (!(tail >= 1 && tail <= DOCKER_LOGS_MAX_TAIL)) {
      return fail(rpc, { code: "refused", error: `tail must be an integer from 1 to ${DOCKER_LOGS_MAX_TAIL}` });
    }
    const service = params.get("service") ?? undefined;
    if (service !== undefined && !/^[a-z0-9][a-z0-9_.-]{0,62}$/i.test(service)) {
      return fail(rpc, { code: "refused", error: "invalid service name" });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), rpc.timeoutMs);
    });
    let read: DockerLogLine[] | "timeout";
    try {
      read = await Promise.race([logs(rpc.ref, { service, tail }), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (read === "timeout") {
      return fail(rpc, { code: "timeout", error: `reading container logs took longer than ${rpc.timeoutMs} ms` });
    }
    const bounded = lastLines(read, tail);
    const body: DockerLogsBody = { lines: bounded.lines, ...(bounded.truncated ? { truncated: true } : {}) };
    const result: RpcResult = {
      v: PROTOCOL_VERSION,
      type: "rpc_result",
      id: rpc.id,
      status: 200,
      contentType: "application/json",
      body,
    };
    const frameBytes = Buffer.byteLength(JSON.stringify(result), "utf8");
    const { frame: frameLimit } = this.limits(rpc);
    if (frameBytes > frameLimit) {
      return fail(rpc, {
        code: "too_large",
        error: `logs too large (${frameBytes} bytes as a frame, the limit is ${frameLimit}); ask fewer lines`,
      });
    }
    return result;
  }

  /** `GET /stats` → one resource sample of the project's own running containers (DockerStatsBody). */
  private async dockerStats(rpc: Rpc): Promise<RpcResult> {
    const stats = this.opts.stats;
    if (!stats) return fail(rpc, { code: "refused", error: "this agent does not serve container stats" });
    if (rpc.method !== "GET" || rpc.path !== "/stats") {
      return fail(rpc, { code: "refused", error: "docker-stats answers GET /stats only" });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), rpc.timeoutMs);
    });
    let body: DockerStatsBody | "timeout";
    try {
      body = await Promise.race([stats(rpc.ref), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (body === "timeout") {
      return fail(rpc, { code: "timeout", error: `sampling container stats took longer than ${rpc.timeoutMs} ms` });
    }
    return { v: PROTOCOL_VERSION, type: "rpc_result", id: rpc.id, status: 200, contentType: "application/json", body };
  }

  /** The upstream URL: the endpoint's base plus the request path, on the endpoint's origin only. */
  private target(base: string, path: string): URL | string {
    let baseUrl: URL;
    try {
      baseUrl = new URL(base);
    } catch {
      return `the endpoint of this service is not a URL`;
    }
    if (baseUrl.protocol !== "http:" && baseUrl.protocol !== "https:") return "the endpoint is not http(s)";
    const bind = this.opts.bindAddress;
    const local = this.opts.localOrigins?.includes(baseUrl.origin) ?? false;
    if (bind && !local && baseUrl.hostname !== bind && baseUrl.hostname !== `[${bind}]`) {
      return `the endpoint is not on this host's bind address (${bind})`;
    }
    if (!path.startsWith("/") || path.startsWith("//") || /[\s#\\]/.test(path)) return "invalid request path";
    const url = new URL(`${baseUrl.origin}${baseUrl.pathname.replace(/\/+$/, "")}${path}`);
    if (url.origin !== baseUrl.origin) return "invalid request path";
    return url;
  }

  /**
   * How big an answer to `rpc` may be: the upstream body, and the whole rpc_result frame. The
   * control plane may ask for less than the protocol allows (`maxResultBytes`, API Gateway's
   * 128 KiB messages); a frame over what it can receive would cost the connection.
   */
  private limits(rpc: Rpc): { body: number; frame: number } {
    const frame = Math.min(MAX_FRAME_BYTES - 1024, rpc.maxResultBytes ?? Number.POSITIVE_INFINITY);
    // The frame's own fields and JSON escaping need room beyond the body.
    const body = Math.min(this.maxResultBytes, rpc.maxResultBytes !== undefined ? frame - 1024 : this.maxResultBytes);
    return { body, frame };
  }

  /** Read the body up to the limit; past it, keep counting (bounded by the timeout) to say how big it was. */
  private async readBody(
    res: Response,
    signal: AbortSignal,
    limit: number,
  ): Promise<
    | { kind: "ok"; data: Buffer }
    | { kind: "too_large"; bytes: number }
    | { kind: "timeout" }
    | { kind: "error"; error: string }
  > {
    const declared = Number(res.headers.get("content-length") ?? Number.NaN);
    if (Number.isFinite(declared) && declared > limit) {
      await res.body?.cancel().catch(() => undefined);
      return { kind: "too_large", bytes: declared };
    }
    if (!res.body) return { kind: "ok", data: Buffer.alloc(0) };
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
        if (bytes <= limit) chunks.push(value);
        else chunks.length = 0;
      }
    } catch (err) {
      if (signal.aborted) return { kind: "timeout" };
      return { kind: "error", error: describe(err) };
    }
    if (bytes > limit) return { kind: "too_large", bytes };
    return { kind: "ok", data: Buffer.concat(chunks) };
  }
}

function fail(rpc: Rpc, f: Failure): RpcResult {
  return { v: PROTOCOL_VERSION, type: "rpc_result", id: rpc.id, code: f.code, error: f.error.slice(0, 4000) };
}

/** fetch's errors hide the reason in `cause` (ECONNREFUSED, …). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  const code = cause && typeof cause === "object" ? (cause as { code?: unknown }).code : undefined;
  return typeof code === "string" ? `${err.message} (${code})` : err.message;
}
