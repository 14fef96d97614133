/**
 * The host agent (dials the control plane, reconciles Compose projects) arrives with the fleet
 * work; see docs/adr and the architecture notes. This package exists so the workspace layout is final.
 */
export const AGENT_PACKAGE = "@supamanager/host-agent";
