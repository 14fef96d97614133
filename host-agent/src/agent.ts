import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { type Applied, type Hello, PROTOCOL_VERSION, type ServerFrame, type Welcome } from "@supamanager/shared";
import { cleanRestoreTmp, registerBackupJobs } from "./backups/index.js";
import { registerDbPasswordJob } from "./db-password/index.js";
import { HealthWatcher, type WatchedProject } from "./health/watcher.js";
import { Ingress, type IngressSettings } from "./ingress/ingress.js";
import { Jobs } from "./jobs/jobs.js";
import type { Logger } from "./log.js";
import { Reconciler } from "./reconcile/reconciler.js";
import { inspectCompose, type ProjectState, ProjectStore } from "./reconcile/store.js";
import { RpcForwarder } from "./rpc/forwarder.js";
import { DockerRuntime } from "./runtime/docker.js";
import type { ContainerRuntime } from "./runtime/types.js";
import { readCapacity } from "./session/capacity.js";
import { Session, type SessionOptions } from "./session/session.js";
import { TunnelClient, type TunnelClientOptions } from "./tunnel/client.js";
import {
  dockerMajorVersion,
  type MajorVersion,
  progressReporter,
  registerUpgradeJobs,
  type Upgrades,
} from "./upgrades/index.js";
import { AGENT_VERSION } from "./version.js";

export interface AgentOptions {
  dataDir: string;
  url: string;
  credential: string;
  hostname: string;
  runtime: ContainerRuntime;
  logger: Logger;
  /** The interface project ports are published on; RPC endpoints elsewhere are refused. */
  bindAddress?: string;
  /** Largest upstream answer forwarded in an rpc_result (default: the protocol's limit). */
  maxRpcResultBytes?: number;
  /** Session tuning (backoff, timeouts); tests shorten these. */
  session?: Pick<
    SessionOptions,
    "backoff" | "authBackoff" | "stableAfterMs" | "handshakeTimeoutMs" | "welcomeTimeoutMs"
  >;
  health?: { pollMs?: number; reportMs?: number; debounceMs?: number };
  /** Tunnel tuning (ping interval, backoff, window); tests shorten these. */
  tunnel?: Pick<TunnelClientOptions, "pingMs" | "backoff" | "window">;
  /**
   * The host ingress (ADR 0036): the proxy the agent runs when the control plane renders stacks for
   * an ingress host. Absent: no certificate was given, and such stacks fail to apply with a message.
   */
  ingress?: IngressSettings | undefined;
  /** How long stop() waits for a running Compose command before giving up on it. */
  drainTimeoutMs?: number;
  /**
   * Upgrade tuning: health polling (tests shorten it), and the data step across PostgreSQL majors
   * (on Docker, by default, docker-major.ts).
   */
  upgrades?: { pollMs?: number; majorVersion?: MajorVersion };
  concurrency?: number;
  /** Self-update (ADR 0040): told of each welcome, and asked what to report in hello. */
  selfUpdate?: {
    onWelcome(welcome: Welcome): void;
    updateFailure(): Promise<Hello["updateFailure"]>;
  };
}

/** Wires the parts: the session to the control plane, the reconciler, the health watcher and jobs. */
export class Agent {
  readonly store: ProjectStore;
  readonly reconciler: Reconciler;
  private readonly health: HealthWatcher;
  private readonly jobs: Jobs;
  private readonly upgrades: Upgrades;
  private readonly rpc: RpcForwarder;
  /** The host's reverse proxy, when the host serves projects through it (ADR 0036). */
  readonly ingress: Ingress;
  private readonly session: Session;
  /** The tunnel's data connection, open while the control plane says this host is in tunnel mode. */
  readonly tunnel: TunnelClient;
  private readonly log: Logger;
  private state: "new" | "started" | "stopping" | "stopped" = "new";
  private readonly servicesCache = new Map<string, { version: number; services: string[] }>();
  /** Random per process: tells the control plane whether jobs it sent before still run here. */
  private readonly bootId = `boot_${randomUUID()}`;

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
    this.store = new ProjectStore(opts.dataDir);
    this.health = new HealthWatcher({
      runtime: opts.runtime,
      logger: opts.logger.child({ component: "health" }),
      send: (f) => this.session.send(f),
      projects: () => this.watchedProjects(),
      ...opts.health,
    });
    this.ingress = new Ingress({
      dataDir: opts.dataDir,
      settings: opts.ingress,
      runtime: opts.runtime,
      logger: opts.logger.child({ component: "ingress" }),
      routes: async () => {
        const routes = [];
        for (const { ref, state } of await this.store.listStates()) {
          if (state?.desiredState === "running" && state.ingress) {
            routes.push({ ref, hostname: state.ingress.hostname, upstream: state.ingress.upstream });
          }
        }
        return routes;
      },
    });
    this.reconciler = new Reconciler({
      store: this.store,
      runtime: opts.runtime,
      logger: opts.logger.child({ component: "reconcile" }),
      concurrency: opts.concurrency,
      onSettled: (ref) => void this.health.checkRef(ref, true),
      ingress: this.ingress,
    });
    this.jobs = new Jobs(opts.logger.child({ component: "jobs" }));
    registerBackupJobs(this.jobs, {
      exec: opts.runtime.execInService?.bind(opts.runtime),
      controlPlaneUrl: opts.url,
      credential: opts.credential,
      dataDir: opts.dataDir,
      logger: opts.logger.child({ component: "backups" }),
    });
    registerDbPasswordJob(this.jobs, opts.runtime.execInService?.bind(opts.runtime));
    this.upgrades = registerUpgradeJobs(this.jobs, {
      runtime: opts.runtime,
      store: this.store,
      dataDir: opts.dataDir,
      logger: opts.logger.child({ component: "upgrades" }),
      hold: (ref, task) => this.reconciler.hold(ref, task),
      progress: progressReporter(opts.url, opts.credential, opts.logger.child({ component: "upgrades" })),
      onSettled: (ref) => void this.health.checkRef(ref, true),
      majorVersion: opts.runtime instanceof DockerRuntime ? dockerMajorVersion(opts.runtime.engine) : undefined,
      gatewayOf: (ref, stack) => this.endpointsOf(ref, stack).gateway ?? null,
      ...opts.upgrades,
    });
    this.rpc = new RpcForwarder({
      logger: opts.logger.child({ component: "rpc" }),
      bindAddress: opts.bindAddress ?? null,
      ...(this.ingress.origin ? { localOrigins: [this.ingress.origin] } : {}),
      ...(opts.maxRpcResultBytes !== undefined ? { maxResultBytes: opts.maxRpcResultBytes } : {}),
      logs: (ref, o) => opts.runtime.containerLogs(ref, o),
      ...(opts.runtime.containerStats ? { stats: opts.runtime.containerStats.bind(opts.runtime) } : {}),
      edgeFunctions: opts.runtime,
      project: async (ref) => {
        const state = await this.store.readState(ref).catch(() => null);
        return state ? { desiredState: state.desiredState, endpoints: this.endpointsOf(ref, state) } : null;
      },
    });
    this.tunnel = new TunnelClient({
      url: opts.url,
      credential: opts.credential,
      logger: opts.logger,
      gateway: async (ref) => {
        const state = await this.store.readState(ref).catch(() => null);
        if (state?.desiredState !== "running") return null;
        return this.endpointsOf(ref, state).gateway ?? null;
      },
      ...opts.tunnel,
    });
    this.session = new Session({
      url: opts.url,
      credential: opts.credential,
      logger: opts.logger,
      hello: async () => ({
        v: PROTOCOL_VERSION,
        type: "hello",
        agentVersion: AGENT_VERSION,
        hostname: opts.hostname,
        compose: opts.runtime.composeKind,
        capacity: readCapacity(await this.reconciler.memReservedBytes()),
        inventory: await this.reconciler.inventory(),
        bootId: this.bootId,
        ingress: this.ingress.status(),
        ...(await this.updateFailure()),
      }),
      heartbeat: async () => ({
        v: PROTOCOL_VERSION,
        type: "heartbeat",
        capacity: readCapacity(await this.reconciler.memReservedBytes()),
        ingress: this.ingress.status(),
      }),
      onFrame: (frame) => this.onFrame(frame),
      onWelcome: (_hostId, welcome) => {
        if (welcome.tunnel === true) this.tunnel.start();
        else this.tunnel.stop();
        // The control plane may have lost what we sent while disconnected: report everything again.
        this.health.resetSent();
        void this.health.checkAll(true);
        opts.selfUpdate?.onWelcome(welcome);
      },
      ...opts.session,
    });
  }

  get connections(): number {
    return this.session.connections;
  }

  /** Jobs running now (backups, restores, …). */
  get runningJobs(): number {
    return this.jobs.running;
  }

  /** Dial the control plane again, so it hears a new hello (e.g. with a self-update's failure). */
  reconnect(reason: string): void {
    this.session.reconnect(reason);
  }

  private async updateFailure(): Promise<Pick<Hello, "updateFailure">> {
    try {
      const failure = await this.opts.selfUpdate?.updateFailure();
      return failure ? { updateFailure: failure } : {};
    } catch (err) {
      this.log.warn("cannot read the self-update state", { err });
      return {};
    }
  }

  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`agent cannot start from state ${this.state}`);
    this.state = "started";
    await this.store.init();
    await cleanRestoreTmp(this.opts.dataDir);
    // Upgrades a previous process left half-way are rolled back (or committed) in the background;
    // applies of those projects wait for it, and their jobs are answered once it is done.
    await this.upgrades.recover();
    // The proxy kept running while the agent was away; load the routes it should have now.
    void this.ingress.sync().catch(() => {});
    this.health.start();
    this.session.start();
    this.log.info("agent started", { version: AGENT_VERSION, compose: this.opts.runtime.composeKind });
  }

  /** Let a running apply finish (bounded), then stop watching and close the socket with 1000. */
  async stop(): Promise<void> {
    if (this.state !== "started") return;
    this.state = "stopping";
    const drained = await this.reconciler.close(this.opts.drainTimeoutMs ?? 25_000);
    if (!drained) this.log.warn("stopping with an apply still running; it is re-applied after the next start");
    this.health.stop();
    this.tunnel.stop();
    await this.session.stop();
    this.state = "stopped";
    this.log.info("agent stopped");
  }

  private onFrame(frame: Exclude<ServerFrame, { type: "welcome" | "error" }>): void {
    switch (frame.type) {
      case "apply":
        this.log.info("apply received", { ref: frame.ref, version: frame.version, desiredState: frame.desiredState });
        void this.reconciler.apply(frame).then((answer: Applied) => {
          if (!this.session.send(answer)) {
            this.log.warn("applied not delivered (disconnected); the inventory reports it on reconnect", {
              ref: answer.ref,
              version: answer.version,
            });
          }
        });
        return;
      case "job":
        void this.jobs.run(frame).then((r) => this.session.send(r));
        return;
      case "rpc":
        void this.rpc.handle(frame).then((answer) => {
          if (!this.session.send(answer)) this.log.warn("rpc result not delivered (disconnected)", { id: answer.id });
        });
        return;
    }
  }

  /**
   * A project's endpoints for rpcs and the tunnel: the stack's, plus the gateway through the
   * ingress's loopback listener when the ingress serves the project (its port is not published).
   */
  /** Where this host reaches a project's services: its published ports, or the ingress for the one it routes. */
  private endpointsOf(ref: string, state: Pick<ProjectState, "endpoints" | "ingress">): Record<string, string> {
    const viaIngress = state.ingress ? this.ingress.endpoint(ref) : null;
    return state.ingress && viaIngress ? { ...state.endpoints, [state.ingress.endpoint]: viaIngress } : state.endpoints;
  }

  private async watchedProjects(): Promise<WatchedProject[]> {
    const out: WatchedProject[] = [];
    for (const { ref, state } of await this.store.listStates()) {
      if (!state || state.desiredState === "deleted") continue;
      let cached = this.servicesCache.get(ref);
      if (!cached || cached.version !== state.appliedVersion) {
        let services: string[] = [];
        try {
          services = inspectCompose(await readFile(this.store.project(ref).composeFile, "utf8")).services;
        } catch (err) {
          this.log.warn("cannot read compose file", { ref, err });
        }
        cached = { version: state.appliedVersion, services };
        this.servicesCache.set(ref, cached);
      }
      out.push({ ref, desiredState: state.desiredState, services: cached.services });
    }
    return out;
  }
}
