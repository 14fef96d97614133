export { createApp } from "./app.js";
export { buildConfig, type Config, parseEnv } from "./config.js";
export type { AppDeps } from "./deps.js";
