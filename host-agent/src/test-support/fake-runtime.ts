import type { DockerContainerStats, DockerLogLine, DockerStatsBody } from "@supamanager/shared";
import type {
  ComposeKind,
  ComposeProject,
  ContainerInfo,
  ContainerRuntime,
  RuntimeEvent,
  Subscription,
} from "../runtime/types.js";
import { ExecError } from "../runtime/types.js";

export type FakeCall = { op: "up" | "stop" | "down" | "restart"; ref: string };

/**
 * An in-memory stand-in for Docker + Compose: records calls, keeps per-project containers, can
 * be told to fail or to block, so the reconcile logic is tested without an engine.
 */
export class FakeRuntime implements ContainerRuntime {
  readonly composeKind: ComposeKind = "v2";
  readonly calls: FakeCall[] = [];
  readonly containers = new Map<string, ContainerInfo[]>();
  /** Per-project log lines, oldest first (what containerLogs reads). */
  readonly logs = new Map<string, DockerLogLine[]>();
  /** Next call of this op fails with an ExecError carrying this stderr. */
  failNext: Partial<Record<FakeCall["op"], string>> = {};
  /** When set, calls wait for this promise (to simulate a slow Compose). */
  gate: Promise<void> | null = null;
  private listeners = new Set<(e: RuntimeEvent) => void>();
  /** Concurrency seen, to check the reconciler's bounds. */
  active = 0;
  maxActive = 0;

  private async op(op: FakeCall["op"], p: ComposeProject, effect: () => void): Promise<void> {
    this.calls.push({ op, ref: p.ref });
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.gate) await this.gate;
      else await new Promise((r) => setImmediate(r));
      const stderr = this.failNext[op];
      if (stderr !== undefined) {
        delete this.failNext[op];
        throw new ExecError("docker", ["compose", "--env-file", p.envFile, op], 1, stderr);
      }
      effect();
      this.emit({ ref: p.ref, action: op });
    } finally {
      this.active -= 1;
    }
  }

  composeUp(p: ComposeProject): Promise<void> {
    return this.op("up", p, () => this.setAll(p.ref, "running", ["db", "meta"]));
  }
  composeStop(p: ComposeProject): Promise<void> {
    return this.op("stop", p, () => this.setAll(p.ref, "exited"));
  }
  composeDown(p: ComposeProject): Promise<void> {
    return this.op("down", p, () => this.containers.delete(p.ref));
  }
  composeRestart(p: ComposeProject): Promise<void> {
    return this.op("restart", p, () => this.setAll(p.ref, "running"));
  }

  async listProjectContainers(ref: string): Promise<ContainerInfo[]> {
    return [...(this.containers.get(ref) ?? [])];
  }

  async containerLogs(ref: string, opts: { service?: string | undefined; tail: number }): Promise<DockerLogLine[]> {
    const all = (this.logs.get(ref) ?? []).filter((l) => opts.service === undefined || l.service === opts.service);
    // Like Docker: the last `tail` lines of each container (service).
    const out: DockerLogLine[] = [];
    for (const service of new Set(all.map((l) => l.service))) {
      const mine = all.filter((l) => l.service === service);
      out.push(...mine.slice(Math.max(0, mine.length - opts.tail)));
    }
    return out;
  }

  /** Per-project resource samples (what containerStats answers). */
  readonly stats = new Map<string, DockerContainerStats[]>();

  async containerStats(ref: string): Promise<DockerStatsBody> {
    return { containers: [...(this.stats.get(ref) ?? [])], hostCpus: 2 };
  }

  watchEvents(onEvent: (event: RuntimeEvent) => void): Subscription {
    this.listeners.add(onEvent);
    return { close: () => this.listeners.delete(onEvent) };
  }

  emit(e: RuntimeEvent): void {
    for (const l of this.listeners) l(e);
  }

  ops(ref?: string): string[] {
    return this.calls.filter((c) => ref === undefined || c.ref === ref).map((c) => c.op);
  }

  private setAll(ref: string, state: ContainerInfo["state"], create?: string[]): void {
    const existing = this.containers.get(ref);
    const list =
      existing && existing.length > 0
        ? existing
        : (create ?? []).map((service) => ({ id: `${ref}-${service}`, service, state, health: "none" as const }));
    this.containers.set(
      ref,
      list.map((c) => ({ ...c, state, health: state === "running" ? ("healthy" as const) : ("none" as const) })),
    );
  }
}
