import type { AgentUpdate, Hello, Welcome } from "@supamanager/shared";
import type { Logger } from "../log.js";
import { decideUpdate } from "./decide.js";
import { installVersion, UpdateError } from "./install.js";
import { readUpdateState, writeHealthMarker, writeUpdateState } from "./state.js";

export interface SelfUpdaterOptions {
  dataDir: string;
  logger: Logger;
  /** This process's version. */
  version: string;
  /** The base install's version (the supervisor's); this process's own when it is the base. */
  baseVersion: string;
  /** Jobs running in this process. */
  runningJobs: () => number;
  /** The new version is in place: stop this agent and start what the state file names. */
  restart: (reason: string) => void;
  /** Reconnect so the control plane hears the failure in a new hello. */
  reportFailure: () => void;
  fetch?: typeof fetch;
  /** How long to wait before asking again while jobs run. */
  retryMs?: number;
}

/**
 * The running agent's half of self-update (ADR 0040): after each welcome it writes the health
 * marker (what the launcher waits for when this version is on trial) and acts on the version the
 * control plane wants: install it and restart, or say why not.
 */
export class SelfUpdater {
  #wanted: AgentUpdate | undefined;
  #busy = false;
  #done = false;
  #retry: NodeJS.Timeout | null = null;
  #skipped = "";

  constructor(private readonly opts: SelfUpdaterOptions) {}

  readonly onWelcome = (welcome: Welcome): void => {
    this.#wanted = welcome.agentUpdate;
    void writeHealthMarker(this.opts.dataDir, {
      version: this.opts.version,
      pid: process.pid,
      at: new Date().toISOString(),
    }).then(
      () => this.check(),
      (err: unknown) => this.opts.logger.error("cannot write the agent's health marker", { err }),
    );
  };

  async updateFailure(): Promise<Hello["updateFailure"]> {
    const { state } = await readUpdateState(this.opts.dataDir);
    return state.failure ?? undefined;
  }

  stop(): void {
    this.#done = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
  }

  /** Decide and act on the wanted version; at most one install at a time. */
  async check(): Promise<void> {
    if (this.#busy || this.#done) return;
    this.#busy = true;
    try {
      await this.#check();
    } catch (err) {
      this.opts.logger.error("agent update check failed", { err });
    } finally {
      this.#busy = false;
    }
  }

  async #check(): Promise<void> {
    const log = this.opts.logger;
    const { state } = await readUpdateState(this.opts.dataDir);
    const wanted = this.#wanted;
    const decision = decideUpdate({
      running: this.opts.version,
      wanted,
      state,
      baseVersion: this.opts.baseVersion,
      runningJobs: this.opts.runningJobs(),
    });
    switch (decision.action) {
      case "none":
        return;
      case "skip":
        if (this.#skipped !== wanted?.version) log.warn("agent update skipped", { reason: decision.reason });
        this.#skipped = wanted?.version ?? "";
        return;
      case "wait":
        log.info("agent update waits", { version: wanted?.version, reason: decision.reason });
        if (this.#retry) clearTimeout(this.#retry);
        this.#retry = setTimeout(() => void this.check(), this.opts.retryMs ?? 10_000);
        this.#retry.unref();
        return;
      case "switch-to-base":
        log.info("agent update: the wanted version is the base install; switching back to it", {
          from: this.opts.version,
          to: wanted?.version,
        });
        await writeUpdateState(this.opts.dataDir, {
          current: null,
          previous: state.current,
          pending: null,
          failure: null,
        });
        this.#done = true;
        this.opts.restart(`switching to the base install ${wanted?.version}`);
        return;
      case "install": {
        const update = decision.update;
        log.info("agent update: installing", {
          from: this.opts.version,
          to: update.version,
          source: update.source.kind,
        });
        try {
          const install = await installVersion({
            dataDir: this.opts.dataDir,
            update,
            logger: log,
            fetch: this.opts.fetch,
          });
          if (this.#done) return;
          const now = await readUpdateState(this.opts.dataDir);
          await writeUpdateState(this.opts.dataDir, {
            current: install,
            previous: now.state.current,
            pending: { since: new Date().toISOString(), deadlineSeconds: update.deadlineSeconds, starts: 0 },
            failure: now.state.failure,
          });
          log.info("agent update: installed; restarting into it", {
            version: update.version,
            dir: install.dir,
            deadlineSeconds: update.deadlineSeconds,
          });
          this.#done = true;
          this.opts.restart(`updating to ${update.version}`);
        } catch (err) {
          const reason =
            err instanceof UpdateError ? err.message : `installing failed: ${(err as Error).message ?? String(err)}`;
          log.error("agent update failed; staying on this version", { version: update.version, reason });
          const now = await readUpdateState(this.opts.dataDir);
          await writeUpdateState(this.opts.dataDir, {
            ...now.state,
            failure: { version: update.version, reason: reason.slice(0, 1000), at: new Date().toISOString() },
          });
          this.opts.reportFailure();
        }
        return;
      }
    }
  }
}
