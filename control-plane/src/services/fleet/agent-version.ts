import { PROTOCOL_VERSION } from "@supamanager/shared";

/**
 * Where a host's agent stands against the version the control plane wants (ADR 0040):
 * - `current`: it runs the wanted version (or none is wanted) and speaks this protocol;
 * - `update_pending`: another version runs; the agent installs the wanted one on its next welcome;
 * - `update_failed`: the agent tried the wanted version and is back on its own (`reason` says why);
 * - `behind`: no update is wanted but it speaks the previous protocol (served until the next bump);
 * - `unknown`: it never said hello.
 */
export type AgentStatus = "current" | "update_pending" | "update_failed" | "behind" | "unknown";

export interface AgentStanding {
  status: AgentStatus;
  /** Anything but current: the host should get another agent. */
  behind: boolean;
  /** Why, for people: what runs, what is wanted, what went wrong. */
  reason: string | null;
}

export function agentStanding(h: {
  version: string | null;
  protocol: number | null;
  wanted: string | undefined;
  failure: { version: string; reason: string } | null;
}): AgentStanding {
  if (h.version === null) return { status: "unknown", behind: false, reason: null };
  if (h.wanted !== undefined && h.version !== h.wanted) {
    if (h.failure && h.failure.version === h.wanted) {
      return {
        status: "update_failed",
        behind: true,
        reason: `the update from ${h.version} to ${h.wanted} failed: ${h.failure.reason}`,
      };
    }
    return {
      status: "update_pending",
      behind: true,
      reason: `runs ${h.version}; ${h.wanted} is wanted and installs when the agent next connects`,
    };
  }
  if (h.protocol !== null && h.protocol < PROTOCOL_VERSION) {
    return {
      status: "behind",
      behind: true,
      reason: `speaks protocol ${h.protocol}, the previous one (this control plane speaks ${PROTOCOL_VERSION}); update the agent before the next protocol change`,
    };
  }
  return { status: "current", behind: false, reason: null };
}
