import { z } from "zod";

/**
 * Studio's project status vocabulary. Studio shows a spinner forever for anything else,
 * so these are the only strings a project's status may take.
 */
export const PROJECT_STATUSES = [
  "COMING_UP",
  "ACTIVE_HEALTHY",
  "ACTIVE_UNHEALTHY",
  "UNKNOWN",
  "PAUSING",
  "INACTIVE",
  "RESTORING",
  "RESTARTING",
  "GOING_DOWN",
  "REMOVED",
  "INIT_FAILED",
  "PAUSE_FAILED",
  "RESTORE_FAILED",
  "UPGRADING",
  "RESIZING",
] as const;

export const ProjectStatus = z.enum(PROJECT_STATUSES);
export type ProjectStatus = z.infer<typeof ProjectStatus>;

/** What the operator wants a project to be; the agent converges on it. */
export const DESIRED_STATES = ["running", "paused", "deleted"] as const;
export const DesiredState = z.enum(DESIRED_STATES);
export type DesiredState = z.infer<typeof DesiredState>;
