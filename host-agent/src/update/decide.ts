import type { AgentUpdate } from "@supamanager/shared";
import type { UpdateState } from "./state.js";

/** What a running agent does about the version the control plane wants (ADR 0040). */
export type UpdateDecision =
  /** Nothing wanted, or the wanted version is the one running. */
  | { action: "none" }
  /** The wanted version failed here before: keep running, keep reporting the failure. */
  | { action: "skip"; reason: string }
  /** Jobs are running (a backup, a restore): their work would die with this process. Ask again later. */
  | { action: "wait"; reason: string }
  /** The base install (what the supervisor starts) is the wanted version: point back at it. */
  | { action: "switch-to-base" }
  /** Download, verify and unpack the wanted version, then restart into it. */
  | { action: "install"; update: AgentUpdate };

export interface DecideInput {
  /** The version of this process. */
  running: string;
  wanted: AgentUpdate | undefined;
  state: Pick<UpdateState, "failure">;
  /** The version of the base install (the supervisor's), when this process was started by it. */
  baseVersion: string;
  /** Jobs this process is running. */
  runningJobs: number;
}

export function decideUpdate(input: DecideInput): UpdateDecision {
  const { wanted } = input;
  if (!wanted || wanted.version === input.running) return { action: "none" };
  const failure = input.state.failure;
  if (failure && failure.version === wanted.version) {
    return {
      action: "skip",
      reason: `the update to ${wanted.version} failed here before (${failure.reason}); not retried until the control plane wants another version`,
    };
  }
  if (input.runningJobs > 0) {
    return { action: "wait", reason: `${input.runningJobs} job(s) running; updating once they finish` };
  }
  if (wanted.version === input.baseVersion) return { action: "switch-to-base" };
  return { action: "install", update: wanted };
}

/** What the launcher does with a version on trial whose process ended or ran out of time. */
export type TrialVerdict = { keep: true } | { keep: false; reason: string };

/** Most starts a version on trial gets (the launcher itself restarted meanwhile) before it is given up. */
export const MAX_TRIAL_STARTS = 3;

/**
 * Judge a version on trial: kept once it wrote the health marker (it was welcomed by the control
 * plane); rolled back when it exited first, did not get there within its deadline, or was started
 * too often without getting there.
 */
export function judgeTrial(t: {
  version: string;
  healthy: boolean;
  exit: { code: number | null; signal: string | null } | null;
  elapsedMs: number;
  deadlineSeconds: number;
  starts: number;
}): TrialVerdict | null {
  if (t.healthy) return { keep: true };
  if (t.exit) {
    const how = t.exit.signal ? `was killed by ${t.exit.signal}` : `exited with code ${t.exit.code}`;
    return { keep: false, reason: `version ${t.version} ${how} before reconnecting to the control plane` };
  }
  if (t.elapsedMs >= t.deadlineSeconds * 1000) {
    return {
      keep: false,
      reason: `version ${t.version} did not reconnect to the control plane within ${t.deadlineSeconds} s`,
    };
  }
  if (t.starts > MAX_TRIAL_STARTS) {
    return {
      keep: false,
      reason: `version ${t.version} was started ${t.starts - 1} times without reconnecting to the control plane`,
    };
  }
  return null;
}
