import { type ChildProcess, spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../log.js";
import { judgeTrial } from "./decide.js";
import { type Install, pruneVersions, readHealthMarker, type UpdateState, writeUpdateState } from "./state.js";

/**
 * Exit code of an agent that installed another version (or switched back to the base): "start me
 * again". The launcher then runs what the state file names; a supervisor restarting the base
 * install (systemd `Restart=always`, `npm start`'s local host) ends up in the same place.
 */
export const EXIT_RESTART = 75;

/** Set for an agent the launcher runs: it runs in-process and never launches another version. */
export const LAUNCHED_ENV = "SUPAMANAGER_AGENT_LAUNCHED";
/** The base install's version, for the launched agent to know when the wanted version is the base. */
export const BASE_VERSION_ENV = "SUPAMANAGER_AGENT_BASE_VERSION";

export type LaunchOutcome =
  /** Stopped by a signal (forwarded to the child) or the child exited on its own with `code`. */
  | { kind: "stopped"; code: number }
  /** The child asked to be started again (EXIT_RESTART): read the state again. */
  | { kind: "restart" }
  /** The version on trial did not reconnect: the state now names the previous version. */
  | { kind: "rolled-back"; reason: string };

export interface SuperviseOptions {
  dataDir: string;
  state: UpdateState;
  /** Arguments after the CLI (`run --data-dir … --log-level …`). */
  args: string[];
  logger: Logger;
  /** Resolves when the launcher is told to stop (SIGTERM/SIGINT). */
  stopSignal: Promise<string>;
  baseVersion: string;
  env?: NodeJS.ProcessEnv;
  /** How often the health marker is looked at. */
  pollMs?: number;
  /** How long a child has after SIGTERM before SIGKILL (it lets a Compose command finish). */
  killGraceMs?: number;
  node?: string;
}

/**
 * Run the installed version the state names as a child process (Node 20 cannot exec) and watch
 * it. While it is on trial, it is kept once it writes the health marker (it was welcomed) and
 * rolled back, to the version before it, when it exits first or misses its deadline. Projects
 * keep running meanwhile: their containers do not belong to the agent's process.
 */
export async function superviseVersion(opts: SuperviseOptions): Promise<LaunchOutcome> {
  const install = opts.state.current as Install;
  const log = opts.logger.child({ component: "launcher", version: install.version });
  let state = opts.state;
  if (state.pending) {
    state = { ...state, pending: { ...state.pending, starts: state.pending.starts + 1 } };
    await writeUpdateState(opts.dataDir, state);
  }
  const startedAt = Date.now();
  const child = spawn(opts.node ?? process.execPath, [install.cli, ...opts.args], {
    stdio: "inherit",
    // Its own process group: a terminal's Ctrl-C (or a supervisor signalling the group) reaches it
    // once, through this launcher, instead of twice (a second signal means "stop now").
    detached: true,
    env: { ...(opts.env ?? process.env), [LAUNCHED_ENV]: "1", [BASE_VERSION_ENV]: opts.baseVersion },
  });
  log.info(state.pending ? "starting the new agent version on trial" : "starting the installed agent version", {
    pid: child.pid,
    dir: install.dir,
    ...(state.pending ? { deadlineSeconds: state.pending.deadlineSeconds, start: state.pending.starts } : {}),
  });
  let exit: { code: number | null; signal: string | null } | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      resolve();
    });
    child.once("error", (err) => {
      log.error("cannot start the installed agent version", { err: err.message });
      exit = { code: null, signal: null };
      resolve();
    });
  });
  let stopping = false;
  void opts.stopSignal.then(() => {
    stopping = true;
  });
  const pollMs = opts.pollMs ?? 500;

  while (true) {
    await Promise.race([exited, opts.stopSignal, sleep(pollMs)]);
    if (stopping) {
      log.info("stopping the agent version", { pid: child.pid });
      await terminate(child, exited, opts.killGraceMs ?? 40_000);
      return { kind: "stopped", code: 0 };
    }
    if (state.pending) {
      const marker = await readHealthMarker(opts.dataDir);
      const healthy = marker !== null && marker.pid === child.pid && marker.version === install.version;
      const verdict = judgeTrial({
        version: install.version,
        healthy,
        exit: healthy ? null : exit,
        elapsedMs: Date.now() - startedAt,
        deadlineSeconds: state.pending.deadlineSeconds,
        starts: state.pending.starts,
      });
      if (verdict?.keep) {
        state = { ...state, pending: null, failure: null };
        await writeUpdateState(opts.dataDir, state);
        await pruneVersions(opts.dataDir, [state.current, state.previous]).catch((err: unknown) =>
          log.warn("cannot remove old agent versions", { err }),
        );
        log.info("agent update: the new version reconnected; keeping it", { pid: child.pid });
      } else if (verdict) {
        log.error("agent update: rolling back", { reason: verdict.reason });
        if (!exit) await terminate(child, exited, opts.killGraceMs ?? 40_000);
        await rollback(opts.dataDir, state, verdict.reason);
        return { kind: "rolled-back", reason: verdict.reason };
      }
      continue;
    }
    if (exit) {
      const { code, signal } = exit as { code: number | null; signal: string | null };
      if (code === EXIT_RESTART) return { kind: "restart" };
      log.warn("the agent version exited", { code, signal });
      return { kind: "stopped", code: code === 0 ? 0 : 1 };
    }
  }
}

/** Point the state back at the version before the one on trial, and remember why. */
async function rollback(dataDir: string, state: UpdateState, reason: string): Promise<void> {
  const failed = state.current as Install;
  await writeUpdateState(dataDir, {
    current: state.previous,
    previous: null,
    pending: null,
    failure: { version: failed.version, reason: reason.slice(0, 1000), at: new Date().toISOString() },
  });
  if (state.previous?.dir !== failed.dir) await rm(join(failed.dir, ".."), { recursive: true, force: true });
}

async function terminate(child: ChildProcess, exited: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
