/** Reported in `hello`; kept in step with package.json by hand (the build has no access to it). */
export const AGENT_VERSION = "0.1.0";
