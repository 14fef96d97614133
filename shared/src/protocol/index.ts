export * from "./backups.js";
export * from "./codec.js";
export * from "./db-password.js";
export * from "./edge-functions.js";
export * from "./frames.js";
export * from "./tunnel.js";
export * from "./tunnel-mux.js";
export * from "./upgrades.js";
