export { Agent, type AgentOptions } from "./agent.js";
export { Credentials, readCredentials, writeCredentials } from "./credentials.js";
export { JoinError, join } from "./join.js";
export { createLogger, type Logger } from "./log.js";
export { main } from "./main.js";
export { DockerRuntime, detectCompose } from "./runtime/docker.js";
export type { ComposeProject, ContainerInfo, ContainerRuntime } from "./runtime/types.js";
export { ExecError } from "./runtime/types.js";
