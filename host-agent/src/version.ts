/**
 * A packed build's version, set by scripts/pack-agent.mjs (esbuild `define`); absent when the
 * agent runs from the workspace's own build.
 */
declare const __SUPAMANAGER_AGENT_VERSION__: string | undefined;

/**
 * Reported in `hello` and compared with the version the control plane wants (ADR 0040); kept in
 * step with package.json by hand (the build has no access to it) unless a packed build sets it.
 */
export const AGENT_VERSION: string =
  typeof __SUPAMANAGER_AGENT_VERSION__ === "string" ? __SUPAMANAGER_AGENT_VERSION__ : "0.1.0";
