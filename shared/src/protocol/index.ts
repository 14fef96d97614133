export * from "./backups.js";
export * from "./codec.js";
export * from "./frames.js";
