export * from "./errors.js";
export * from "./ids.js";
export * from "./project-status.js";
export * from "./protocol/index.js";
export * from "./roles.js";
