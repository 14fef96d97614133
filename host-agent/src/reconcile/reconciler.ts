import type { Applied, Apply, InventoryItem } from "@supamanager/shared";
import { PROTOCOL_VERSION } from "@supamanager/shared";
import type { Logger } from "../log.js";
import { scrubTail } from "../runtime/exec.js";
import type { ContainerRuntime } from "../runtime/types.js";
import { ExecError } from "../runtime/types.js";
import { KeyedQueue } from "./queue.js";
import { inspectCompose, type ProjectState, type ProjectStore } from "./store.js";

/** What an apply frame asks for, given what was last applied. Pure, so it is tested on its own. */
export type Plan =
  | { kind: "noop" }
  | { kind: "delete" }
  | { kind: "converge"; desiredState: "running" | "paused"; restart: boolean };

export function plan(
  current: Pick<ProjectState, "appliedVersion" | "desiredState" | "restartNonce"> | null,
  apply: Pick<Apply, "version" | "desiredState" | "restartNonce">,
): Plan {
  if (
    current !== null &&
    current.appliedVersion === apply.version &&
    current.desiredState === apply.desiredState &&
    current.restartNonce === apply.restartNonce
  ) {
    return { kind: "noop" };
  }
  if (apply.desiredState === "deleted") return { kind: "delete" };
  // A restart only means something for a project that was already there; a first `up` starts it anyway.
  const restart = apply.desiredState === "running" && current !== null && current.restartNonce !== apply.restartNonce;
  return { kind: "converge", desiredState: apply.desiredState, restart };
}

const SECRET_NAME = /PASS|SECRET|KEY|TOKEN|JWT/;

/** Env values that must not show up in an error: anything long, and anything named like a secret. */
export function secretValues(env: Record<string, string>): string[] {
  return Object.entries(env)
    .filter(([k, v]) => v.length >= 8 || (SECRET_NAME.test(k) && v.length > 0))
    .map(([, v]) => v);
}

export const ERROR_MAX_CHARS = 3900;

export interface ReconcilerOptions {
  store: ProjectStore;
  runtime: ContainerRuntime;
  logger: Logger;
  /** Projects converging at the same time. */
  concurrency?: number;
  now?: () => Date;
  /** Called after each apply attempt (health watcher hooks in here). */
  onSettled?: (ref: string, state: ProjectState | null) => void;
  /**
   * The host's ingress (ADR 0036): `prepare` before a project it serves starts (the shared
   * network, a certificate), `sync` after any project changed (routes follow the projects).
   */
  ingress?: { prepare(): Promise<void>; sync(): Promise<void> };
}

/** Applies desired state to Compose projects, one apply at a time per project. */
export class Reconciler {
  private readonly queue: KeyedQueue;
  private closed = false;
  private readonly now: () => Date;

  constructor(private readonly opts: ReconcilerOptions) {
    this.queue = new KeyedQueue(opts.concurrency ?? 2);
    this.now = opts.now ?? (() => new Date());
  }

  /** Queue an apply; resolves with the `applied` answer (never rejects). */
  apply(frame: Apply): Promise<Applied> {
    if (this.closed) return Promise.resolve(this.answer(frame, false, "agent is stopping; apply not started"));
    return this.queue.run(frame.ref, () =>
      this.closed
        ? Promise.resolve(this.answer(frame, false, "agent is stopping; apply not started"))
        : this.execute(frame),
    );
  }

  /**
   * Run `task` while no apply of project `ref` runs: applies that arrive meanwhile wait for it,
   * then apply what they say (ADR 0037: an upgrade holds its project).
   */
  hold<T>(ref: string, task: () => Promise<T>): Promise<T> {
    return this.queue.exclusive(ref, task);
  }

  /** What the agent runs, from disk: sent in `hello`. */
  async inventory(): Promise<InventoryItem[]> {
    const items: InventoryItem[] = [];
    for (const { ref, state } of await this.opts.store.listStates()) {
      items.push(
        state
          ? { ref, appliedVersion: state.appliedVersion, state: state.desiredState }
          : { ref, appliedVersion: 0, state: "unknown" },
      );
    }
    return items;
  }

  /** Memory promised to the projects that run (their limits), for the capacity report. */
  async memReservedBytes(): Promise<number> {
    let total = 0;
    for (const { state } of await this.opts.store.listStates()) {
      if (state?.desiredState === "running") total += state.memLimitBytes;
    }
    return total;
  }

  get pending(): number {
    return this.queue.size;
  }

  /**
   * Stop taking work and wait (at most `timeoutMs`) for the applies already running. Queued applies
   * that haven't started are answered as not started. Returns whether everything finished.
   */
  async close(timeoutMs: number): Promise<boolean> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), timeoutMs);
    });
    const done = await Promise.race([this.queue.idle().then(() => true as const), timeout]);
    clearTimeout(timer);
    return done;
  }

  private answer(frame: Apply, ok: boolean, error?: string): Applied {
    const a: Applied = {
      v: PROTOCOL_VERSION,
      type: "applied",
      ref: frame.ref,
      version: frame.version,
      desiredState: frame.desiredState,
      ok,
    };
    if (error !== undefined) a.error = error.length > ERROR_MAX_CHARS ? `${error.slice(0, ERROR_MAX_CHARS)}…` : error;
    return a;
  }

  private async execute(frame: Apply): Promise<Applied> {
    try {
      return await this.converge(frame);
    } catch (err) {
      // converge() answers its own failures; this is for the unexpected (e.g. an unreadable data dir).
      this.opts.logger.error("apply: unexpected failure", { ref: frame.ref, err });
      return this.answer(frame, false, `agent error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async converge(frame: Apply): Promise<Applied> {
    const { store, runtime } = this.opts;
    const log = this.opts.logger.child({ ref: frame.ref, version: frame.version, desiredState: frame.desiredState });
    const current = await store.readState(frame.ref);
    const p = plan(current, frame);
    if (p.kind === "noop") {
      log.debug("apply: already applied");
      return this.answer(frame, true);
    }
    const started = Date.now();
    let result: ProjectState | null = current;
    // Scrubbed from any error we report, whichever runtime produced it.
    let secrets: string[] = frame.stack ? secretValues(frame.stack.env) : [];
    try {
      if (p.kind === "delete") {
        if (await store.exists(frame.ref)) {
          const env = await store.readEnv(frame.ref);
          secrets = secretValues(env);
          await runtime.composeDown(store.project(frame.ref, env, secrets));
        } else {
          const left = await runtime.listProjectContainers(frame.ref);
          if (left.length > 0) {
            throw new Error(`project directory is missing but ${left.length} container(s) of the project remain`);
          }
        }
        await store.remove(frame.ref);
        result = null;
      } else {
        const stack = frame.stack;
        if (!stack) throw new Error(`desired state ${p.desiredState} needs a stack and the apply frame has none`);
        if (stack.ingress && p.desiredState === "running") {
          if (!this.opts.ingress) throw new Error("this agent runs no host ingress, and the stack needs one");
          await this.opts.ingress.prepare();
        }
        await store.writeStack(frame.ref, stack);
        const project = store.project(frame.ref, stack.env, secrets);
        if (p.desiredState === "running") {
          await runtime.composeUp(project);
          if (p.restart) await runtime.composeRestart(project);
        } else {
          await runtime.composeStop(project);
        }
        result = {
          appliedVersion: frame.version,
          desiredState: p.desiredState,
          restartNonce: frame.restartNonce,
          release: stack.release,
          memLimitBytes: inspectCompose(stack.composeFile).memLimitBytes,
          appliedAt: this.now().toISOString(),
          endpoints: stack.endpoints ?? {},
          ...(stack.ingress ? { ingress: stack.ingress } : {}),
        };
        // Only now: an agent killed before this line re-applies after restart (its inventory is older).
        await store.writeState(frame.ref, result);
      }
      // The proxy's routes follow: a project that came, went, paused or moved to/from the ingress.
      // A failure here fails the apply only for a project the ingress serves.
      if (this.opts.ingress) {
        const served = result?.ingress !== undefined || current?.ingress !== undefined;
        await this.opts.ingress.sync().catch((err: unknown) => {
          if (served) throw new Error(`the host ingress failed: ${err instanceof Error ? err.message : String(err)}`);
        });
      }
      log.info("apply: done", { plan: p.kind, restart: p.kind === "converge" && p.restart, ms: Date.now() - started });
      return this.answer(frame, true);
    } catch (err) {
      const raw =
        err instanceof ExecError
          ? `${describeCommand(err)} exited with ${err.exitCode ?? "a signal"}: ${err.stderr}`
          : err instanceof Error
            ? err.message
            : String(err);
      const message = scrubTail(raw, secrets, ERROR_MAX_CHARS);
      log.error("apply: failed", { plan: p.kind, error: message, ms: Date.now() - started });
      return this.answer(frame, false, message);
    } finally {
      this.opts.onSettled?.(frame.ref, result);
    }
  }
}

/** "docker compose up -d --remove-orphans", without the per-project flags (paths tell nothing useful). */
function describeCommand(err: ExecError): string {
  const i = err.args.indexOf("--env-file");
  const sub = i >= 0 ? err.args.slice(i + 2) : err.args;
  const prefix = err.args[0] === "compose" ? "docker compose" : err.command;
  return `${prefix} ${sub.join(" ")}`.trim();
}
