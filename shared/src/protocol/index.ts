export * from "./codec.js";
export * from "./frames.js";
