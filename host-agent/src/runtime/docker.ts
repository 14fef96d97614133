import { cpus, totalmem } from "node:os";
import type { DockerContainerStats, DockerLogLine, DockerStatsBody } from "@supamanager/shared";
import Docker from "dockerode";
import type { Logger } from "../log.js";
import { run } from "./exec.js";
import { ensureImages } from "./images.js";
import { demuxDockerLogs, toLogLines } from "./logs.js";
import { execInService } from "./service-exec.js";
import { putServiceArchive, restartService } from "./service-files.js";
import type {
  ComposeKind,
  ComposeProject,
  ContainerInfo,
  ContainerRuntime,
  RuntimeEvent,
  ServiceExec,
  Subscription,
  VolumeOps,
} from "./types.js";
import { ExecError } from "./types.js";

export const PROJECT_LABEL = "com.docker.compose.project";
export const SERVICE_LABEL = "com.docker.compose.service";

/**
 * Compose runs with a minimal environment: the agent's own variables must not leak into a
 * project's interpolation (an exported POSTGRES_PASSWORD would silently win over the .env file),
 * and COMPOSE_* variables must not change which files or project name Compose uses.
 */
export function composeEnv(source: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const keep = [
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CONTEXT",
  ];
  const env: NodeJS.ProcessEnv = {};
  for (const k of keep) if (source[k] !== undefined) env[k] = source[k];
  env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return env;
}

/** Which Compose exists: the v2 plugin wins, else `docker-compose` v1. Throws when neither does. */
export async function detectCompose(env = composeEnv()): Promise<ComposeKind> {
  try {
    await run("docker", ["compose", "version"], { env, timeoutMs: 20_000 });
    return "v2";
  } catch {
    // fall through to v1
  }
  try {
    await run("docker-compose", ["version"], { env, timeoutMs: 20_000 });
    return "v1";
  } catch {
    throw new Error("neither `docker compose` (v2 plugin) nor `docker-compose` (v1) works on this host");
  }
}

/** argv for one Compose command: program and arguments, identical flags for v1 and v2. */
export function composeArgv(kind: ComposeKind, p: ComposeProject, sub: readonly string[]): [string, string[]] {
  const flags = [
    "--project-name",
    p.ref,
    "--project-directory",
    p.dir,
    "--file",
    p.composeFile,
    "--env-file",
    p.envFile,
  ];
  return kind === "v2" ? ["docker", ["compose", ...flags, ...sub]] : ["docker-compose", [...flags, ...sub]];
}

const STATES = new Set<ContainerInfo["state"]>([
  "created",
  "running",
  "restarting",
  "exited",
  "paused",
  "dead",
  "removing",
]);

/** Docker's list API gives the health check only inside the human status ("Up 3s (healthy)"). */
export function parseHealth(status: string): ContainerInfo["health"] {
  if (/\(health: starting\)/.test(status)) return "starting";
  if (/\(unhealthy\)/.test(status)) return "unhealthy";
  if (/\(healthy\)/.test(status)) return "healthy";
  return "none";
}

export function toContainerInfo(c: Docker.ContainerInfo): ContainerInfo | null {
  const service = c.Labels?.[SERVICE_LABEL];
  if (!service) return null;
  const state = STATES.has(c.State as ContainerInfo["state"]) ? (c.State as ContainerInfo["state"]) : "dead";
  return { id: c.Id, service, state, health: state === "running" ? parseHealth(c.Status ?? "") : "none" };
}

/**
 * Runs `script` with `sh -c` in a throwaway container of `image`: as root (ownership and modes
 * survive a copy), without network, with `volumes` (`name:path[:ro]`) mounted; argv only.
 */
export async function throwawayShell(
  image: string,
  volumes: readonly string[],
  script: string,
  timeoutMs: number,
): Promise<void> {
  await run(
    "docker",
    [
      "run",
      "--rm",
      "--network",
      "none",
      "--user",
      "0:0",
      "--entrypoint",
      "sh",
      ...volumes.flatMap((v) => ["-v", v]),
      image,
      "-c",
      script,
    ],
    { env: composeEnv(), timeoutMs },
  );
}

export interface DockerRuntimeOptions {
  logger: Logger;
  docker?: Docker;
  composeKind?: ComposeKind;
  /** Upper bound for one Compose command (an `up` may build networks and start many containers). */
  composeTimeoutMs?: number;
  /** How long to wait before re-opening a broken event stream. */
  eventsRetryMs?: number;
}

export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly timeoutMs: number;
  private readonly eventsRetryMs: number;

  private constructor(
    readonly composeKind: ComposeKind,
    private readonly opts: DockerRuntimeOptions,
  ) {
    this.docker = opts.docker ?? new Docker();
    this.timeoutMs = opts.composeTimeoutMs ?? 10 * 60_000;
    this.eventsRetryMs = opts.eventsRetryMs ?? 5_000;
  }

  /** Detects Compose once; checks the engine answers so a broken host fails at start, not at first apply. */
  static async create(opts: DockerRuntimeOptions): Promise<DockerRuntime> {
    const kind = opts.composeKind ?? (await detectCompose());
    const runtime = new DockerRuntime(kind, opts);
    await runtime.docker.ping();
    return runtime;
  }

  private async compose(p: ComposeProject, sub: readonly string[]): Promise<void> {
    const [cmd, args] = composeArgv(this.composeKind, p, sub);
    const started = Date.now();
    await run(cmd, args, {
      cwd: p.dir,
      env: { ...p.env, ...composeEnv() },
      timeoutMs: this.timeoutMs,
      secrets: p.secrets,
    });
    this.opts.logger.debug("compose finished", { ref: p.ref, command: sub[0], ms: Date.now() - started });
  }

  async composeUp(p: ComposeProject): Promise<void> {
    // Images first: a missing local-only image or an unreachable registry fails with a message
    // naming the image and what to do, instead of Compose's pull output (ADR 0018).
    await ensureImages(this.docker, p.composeFile, this.opts.logger.child({ ref: p.ref }));
    await this.compose(p, ["up", "-d", "--remove-orphans"]);
  }
  async composeUpServices(p: ComposeProject, services: readonly string[]): Promise<void> {
    await ensureImages(this.docker, p.composeFile, this.opts.logger.child({ ref: p.ref }));
    await this.compose(p, ["up", "-d", "--no-deps", ...services]);
  }
  /** The Engine API client, for parts that drive containers outside Compose (upgrades). */
  get engine(): Docker {
    return this.docker;
  }
  composeStop(p: ComposeProject): Promise<void> {
    return this.compose(p, ["stop"]);
  }
  composeDown(p: ComposeProject): Promise<void> {
    return this.compose(p, ["down", "-v", "--remove-orphans"]);
  }
  readonly volumes: VolumeOps = {
    exists: async (name) => {
      try {
        await run("docker", ["volume", "inspect", "--format", "{{.Name}}", name], {
          env: composeEnv(),
          timeoutMs: 30_000,
        });
        return true;
      } catch (err) {
        if (err instanceof ExecError && /no such volume/i.test(err.stderr)) return false;
        throw err;
      }
    },
    copy: async (from, to, image) => {
      const env = composeEnv();
      await run("docker", ["volume", "create", to], { env, timeoutMs: 30_000 });
      // The names are Docker's to check. `find -delete` empties the target (dot files too) so a copy
      // back never mixes two data directories.
      await throwawayShell(
        image,
        [`${from}:/from:ro`, `${to}:/to`],
        "find /to -mindepth 1 -delete && cp -a /from/. /to/",
        this.timeoutMs * 6,
      );
    },
    remove: async (name) => {
      await run("docker", ["volume", "rm", "--force", name], { env: composeEnv(), timeoutMs: 60_000 });
    },
  };

  composeRestart(p: ComposeProject): Promise<void> {
    return this.compose(p, ["restart"]);
  }

  async listProjectContainers(ref: string): Promise<ContainerInfo[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${PROJECT_LABEL}=${ref}`] } });
    return list.map(toContainerInfo).filter((c): c is ContainerInfo => c !== null);
  }

  async containerLogs(ref: string, opts: { service?: string | undefined; tail: number }): Promise<DockerLogLine[]> {
    const label = [`${PROJECT_LABEL}=${ref}`];
    if (opts.service !== undefined) label.push(`${SERVICE_LABEL}=${opts.service}`);
    const list = await this.docker.listContainers({ all: true, filters: { label } });
    const lines: DockerLogLine[] = [];
    for (const c of list) {
      // Docker filtered by label already; check again so no other project's container is ever read.
      const service = c.Labels?.[SERVICE_LABEL];
      if (c.Labels?.[PROJECT_LABEL] !== ref || !service) continue;
      if (opts.service !== undefined && service !== opts.service) continue;
      const raw = (await this.docker.getContainer(c.Id).logs({
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: opts.tail,
      })) as unknown as Buffer | string;
      const buf = typeof raw === "string" ? Buffer.from(raw, "utf8") : raw;
      lines.push(...toLogLines(service, demuxDockerLogs(buf)));
    }
    return lines;
  }

  async containerStats(ref: string): Promise<DockerStatsBody> {
    const list = await this.docker.listContainers({
      filters: { label: [`${PROJECT_LABEL}=${ref}`], status: ["running"] },
    });
    const containers: DockerContainerStats[] = [];
    for (const c of list) {
      // Docker filtered by label already; check again so no other project's container is ever read.
      const service = c.Labels?.[SERVICE_LABEL];
      if (c.Labels?.[PROJECT_LABEL] !== ref || !service) continue;
      // One sample (stream: false): Docker waits for a second reading, so precpu_stats is filled.
      const raw = (await this.docker.getContainer(c.Id).stats({ stream: false })) as unknown as DockerStatsSample;
      containers.push({ service, ...statsOf(raw) });
    }
    return { containers, hostCpus: cpus().length };
  }

  execInService(ref: string, service: string, cmd: readonly string[], opts: { stdin: boolean }): Promise<ServiceExec> {
    return execInService(this.docker, ref, service, cmd, opts);
  }

  putServiceArchive(ref: string, service: string, dir: string, tar: Buffer): Promise<void> {
    return putServiceArchive(this.docker, ref, service, dir, tar);
  }

  restartService(ref: string, service: string): Promise<void> {
    return restartService(this.docker, ref, service);
  }

  watchEvents(onEvent: (event: RuntimeEvent) => void): Subscription {
    let closed = false;
    let stream: NodeJS.ReadableStream | null = null;
    let retry: NodeJS.Timeout | null = null;
    const log = this.opts.logger;

    const open = () => {
      if (closed) return;
      this.docker.getEvents({ filters: { type: ["container"], label: [PROJECT_LABEL] } }).then(
        (s) => {
          if (closed) {
            destroy(s);
            return;
          }
          stream = s;
          let buffered = "";
          s.on("data", (chunk: Buffer | string) => {
            buffered += chunk.toString();
            let nl = buffered.indexOf("\n");
            while (nl >= 0) {
              const line = buffered.slice(0, nl).trim();
              buffered = buffered.slice(nl + 1);
              nl = buffered.indexOf("\n");
              if (!line) continue;
              try {
                const ev = JSON.parse(line) as { Action?: string; Actor?: { Attributes?: Record<string, string> } };
                const ref = ev.Actor?.Attributes?.[PROJECT_LABEL];
                if (ref) onEvent({ ref, action: ev.Action ?? "" });
              } catch (err) {
                log.warn("unparseable docker event", { err });
              }
            }
          });
          const reopen = (why: string) => {
            if (closed || stream !== s) return;
            stream = null;
            log.warn("docker event stream ended; reopening", { why });
            retry = setTimeout(open, this.eventsRetryMs);
          };
          s.on("end", () => reopen("end"));
          s.on("error", (err: Error) => reopen(err.message));
        },
        (err: Error) => {
          if (closed) return;
          log.warn("cannot open docker event stream; retrying", { err: err.message });
          retry = setTimeout(open, this.eventsRetryMs);
        },
      );
    };
    open();
    return {
      close: () => {
        closed = true;
        if (retry) clearTimeout(retry);
        if (stream) destroy(stream);
        stream = null;
      },
    };
  }
}

function destroy(s: NodeJS.ReadableStream): void {
  (s as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}

/** The parts of Docker's stats answer (GET /containers/{id}/stats) used here. */
interface DockerStatsSample {
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

/**
 * CPU percent (of one CPU) and memory of one stats sample, computed as `docker stats` does:
 * the container's CPU time over the host's in the sample, times the CPUs; memory without the
 * page cache (cgroup v2 `inactive_file`, v1 `total_inactive_file`).
 */
export function statsOf(s: DockerStatsSample): Omit<DockerContainerStats, "service"> {
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const online = s.cpu_stats?.online_cpus ?? cpus().length;
  const cpuPercent = cpuDelta > 0 && systemDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;
  const stats = s.memory_stats?.stats ?? {};
  const cache = stats.inactive_file ?? stats.total_inactive_file ?? 0;
  const usage = s.memory_stats?.usage ?? 0;
  const limit = s.memory_stats?.limit ?? 0;
  return {
    cpuPercent: Math.round(cpuPercent * 100) / 100,
    memoryBytes: Math.max(0, usage - cache),
    memoryLimitBytes: limit > 0 ? limit : totalmem(),
  };
}
