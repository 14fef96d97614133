import type { Duplex } from "node:stream";
import type { DockerLogLine, DockerStatsBody, ServiceHealth } from "@supamanager/shared";

export type ComposeKind = "v2" | "v1";

/** Where a project's files are on disk; every Compose command gets these explicitly. */
export interface ComposeProject {
  ref: string;
  /** The project directory (Compose's --project-directory). */
  dir: string;
  /** Absolute path of the compose file. */
  composeFile: string;
  /** Absolute path of the .env file used for interpolation. */
  envFile: string;
  /**
   * Interpolation variables, handed to Compose in its process environment: values there are taken
   * literally by v1 and v2 alike, unlike .env files (v1's parser expands `${…}` even in quotes).
   */
  env?: Readonly<Record<string, string>>;
  /** Values that must never appear in an error message (scrubbed from compose's stderr). */
  secrets?: readonly string[];
}

export interface ContainerInfo {
  id: string;
  /** The Compose service label; containers without one are not reported. */
  service: string;
  state: ServiceHealth["state"];
  health: ServiceHealth["health"];
}

export interface RuntimeEvent {
  ref: string;
  action: string;
}

export interface Subscription {
  close(): void;
}

/**
 * Everything the agent needs from a container engine. The Docker implementation drives Compose
 * and the Engine API; tests of the reconcile logic use an in-memory fake.
 */
export interface ContainerRuntime {
  readonly composeKind: ComposeKind;
  composeUp(project: ComposeProject): Promise<void>;
  composeStop(project: ComposeProject): Promise<void>;
  /**
   * `up` of some services only, without their dependencies (an upgrade starts the new database
   * alone). Optional: without it, upgrades across PostgreSQL majors are refused.
   */
  composeUpServices?(project: ComposeProject, services: readonly string[]): Promise<void>;
  composeDown(project: ComposeProject): Promise<void>;
  composeRestart(project: ComposeProject): Promise<void>;
  /** Containers labelled com.docker.compose.project=<ref>, running or not. */
  listProjectContainers(ref: string): Promise<ContainerInfo[]>;
  /**
   * The last `tail` log lines of each of the project's containers (label
   * com.docker.compose.project=<ref>; with `service`, only that Compose service), stdout and
   * stderr told apart. Containers of other projects are never read.
   */
  containerLogs(ref: string, opts: { service?: string | undefined; tail: number }): Promise<DockerLogLine[]>;
  /**
   * One resource sample (CPU, memory) of each of the project's running containers. Optional: a
   * runtime without it answers the docker-stats rpc with `refused`.
   */
  containerStats?(ref: string): Promise<DockerStatsBody>;
  /** Container events of Compose projects; the subscription survives engine hiccups. */
  watchEvents(onEvent: (event: RuntimeEvent) => void): Subscription;
  /**
   * Runs a command (argv) in the running container of one service of project `ref` (backups and
   * restores). Optional: a runtime without it cannot run backup jobs.
   */
  execInService?(ref: string, service: string, cmd: readonly string[], opts: { stdin: boolean }): Promise<ServiceExec>;
  /**
   * Unpacks a tar archive into `dir` of the running container of one service of project `ref`
   * (Edge Functions into the functions volume). Optional: without it, the edge-functions rpc is refused.
   */
  putServiceArchive?(ref: string, service: string, dir: string, tar: Buffer): Promise<void>;
  /** Restarts the running container of one service of project `ref`. */
  restartService?(ref: string, service: string): Promise<void>;
  /**
   * Named volumes, for upgrades (ADR 0037): whether one exists, a copy of one into another
   * (made empty first; run in a throwaway container of `image` as root, without network, so
   * ownership and modes survive), and removal. Optional: without them, upgrades are refused.
   */
  volumes?: VolumeOps;
}

export interface VolumeOps {
  exists(name: string): Promise<boolean>;
  copy(from: string, to: string, image: string): Promise<void>;
  remove(name: string): Promise<void>;
}

/** A command running inside a container. */
export interface ServiceExec {
  /** Docker's multiplexed stdout/stderr frames; with stdin, writes go to the command's stdin. */
  stream: Duplex;
  /** Resolves once the command has exited (null when Docker never reports an exit). */
  exitCode(): Promise<number | null>;
}

/** A command that failed: what ran (argv, never a shell string) and the tail of its stderr. */
export class ExecError extends Error {
  override readonly name = "ExecError";
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    message?: string,
  ) {
    super(message ?? `${command} ${args.join(" ")} failed (exit ${exitCode ?? "signal"}): ${stderr}`);
  }
}
