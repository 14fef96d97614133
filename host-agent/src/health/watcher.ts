import { type Health, PROTOCOL_VERSION, type ServiceHealth } from "@supamanager/shared";
import type { Logger } from "../log.js";
import type { ContainerInfo, ContainerRuntime, Subscription } from "../runtime/types.js";

const SERVICE_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** Worst first: when a service has several containers (replicas), the worst one speaks for it. */
const STATE_RANK: Record<ServiceHealth["state"], number> = {
  missing: 0,
  dead: 1,
  exited: 2,
  removing: 3,
  created: 4,
  paused: 5,
  restarting: 6,
  running: 7,
};
const HEALTH_RANK: Record<ServiceHealth["health"], number> = { unhealthy: 0, starting: 1, none: 2, healthy: 3 };

/**
 * One entry per service: the services Compose knows from the stack (a missing container is
 * reported as `missing`, not left out) plus any other container carrying the project's label.
 */
export function summarize(containers: readonly ContainerInfo[], expected: readonly string[]): ServiceHealth[] {
  const by = new Map<string, ServiceHealth>();
  for (const name of expected) by.set(name, { name, state: "missing", health: "none" });
  for (const c of containers) {
    if (!SERVICE_NAME.test(c.service)) continue;
    const prev = by.get(c.service);
    const next: ServiceHealth = { name: c.service, state: c.state, health: c.health };
    if (!prev || prev.state === "missing" || worse(next, prev)) by.set(c.service, next);
  }
  return [...by.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).slice(0, 64);
}

function worse(a: ServiceHealth, b: ServiceHealth): boolean {
  const s = STATE_RANK[a.state] - STATE_RANK[b.state];
  return s < 0 || (s === 0 && HEALTH_RANK[a.health] < HEALTH_RANK[b.health]);
}

export interface WatchedProject {
  ref: string;
  desiredState: "running" | "paused";
  services: readonly string[];
}

export interface HealthWatcherOptions {
  runtime: ContainerRuntime;
  logger: Logger;
  send: (frame: Health) => void;
  /** Projects to watch, read fresh on each poll. */
  projects: () => Promise<WatchedProject[]>;
  pollMs?: number;
  /** Every running project's health is sent at least this often, changed or not. */
  reportMs?: number;
  /** Coalesces a burst of container events into one check. */
  debounceMs?: number;
}

/** Watches containers (engine events + a periodic poll) and sends `health` on change and periodically. */
export class HealthWatcher {
  private readonly last = new Map<string, string>();
  private poller: NodeJS.Timeout | null = null;
  private reporter: NodeJS.Timeout | null = null;
  private events: Subscription | null = null;
  private readonly debounced = new Map<string, NodeJS.Timeout>();
  private running = false;

  constructor(private readonly opts: HealthWatcherOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.events = this.opts.runtime.watchEvents((e) => this.poke(e.ref));
    this.poller = setInterval(() => void this.checkAll(false), this.opts.pollMs ?? 10_000);
    this.reporter = setInterval(() => void this.checkAll(true), this.opts.reportMs ?? 30_000);
    void this.checkAll(true);
  }

  stop(): void {
    this.running = false;
    this.events?.close();
    this.events = null;
    if (this.poller) clearInterval(this.poller);
    if (this.reporter) clearInterval(this.reporter);
    this.poller = this.reporter = null;
    for (const t of this.debounced.values()) clearTimeout(t);
    this.debounced.clear();
  }

  /** Forget what was sent, so the next check reports everything (after a reconnect). */
  resetSent(): void {
    this.last.clear();
  }

  /** Something happened to a project's containers: check it soon. */
  poke(ref: string): void {
    if (!this.running || this.debounced.has(ref)) return;
    this.debounced.set(
      ref,
      setTimeout(() => {
        this.debounced.delete(ref);
        void this.checkRef(ref, false);
      }, this.opts.debounceMs ?? 250),
    );
  }

  async checkRef(ref: string, force: boolean): Promise<void> {
    const project = (await this.safeProjects()).find((p) => p.ref === ref);
    if (!project) {
      this.last.delete(ref);
      return;
    }
    await this.check(project, force);
  }

  async checkAll(periodic: boolean): Promise<void> {
    if (!this.running) return;
    const projects = await this.safeProjects();
    const refs = new Set(projects.map((p) => p.ref));
    for (const ref of this.last.keys()) if (!refs.has(ref)) this.last.delete(ref);
    for (const p of projects) await this.check(p, periodic && p.desiredState === "running");
  }

  private async safeProjects(): Promise<WatchedProject[]> {
    try {
      return await this.opts.projects();
    } catch (err) {
      this.opts.logger.warn("health: cannot list projects", { err });
      return [];
    }
  }

  private async check(p: WatchedProject, force: boolean): Promise<void> {
    if (!this.running) return;
    let containers: ContainerInfo[];
    try {
      containers = await this.opts.runtime.listProjectContainers(p.ref);
    } catch (err) {
      this.opts.logger.warn("health: cannot list containers", { ref: p.ref, err });
      return;
    }
    const services = summarize(containers, p.services);
    const signature = JSON.stringify(services);
    if (!force && this.last.get(p.ref) === signature) return;
    this.last.set(p.ref, signature);
    this.opts.send({ v: PROTOCOL_VERSION, type: "health", ref: p.ref, services });
  }
}
