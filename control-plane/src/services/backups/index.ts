import { BACKUP_JOB_KIND, RESTORE_JOB_KIND } from "@supamanager/shared";
import { registerJobKind } from "../jobs/jobs.js";
import { backupJobHandler } from "./backups.js";
import { restoreJobHandler } from "./restore.js";

/**
 * Backups and restores (ADR 0015, docs/backups.md). Importing this module registers what happens
 * when `backup` and `restore` jobs answer; the routes import it, so every app has the handlers.
 */
registerJobKind(BACKUP_JOB_KIND, backupJobHandler);
registerJobKind(RESTORE_JOB_KIND, restoreJobHandler);

export {
  beginBackup,
  downloadLink,
  latestDownloadableBackupId,
  listBackups,
  startBackup,
  uploadUrls,
} from "./backups.js";
export { type MaintenanceReport, runBackupMaintenance } from "./maintenance.js";
export { restoreInPlace, restoreToNewProject } from "./restore.js";
export { getSchedule, putSchedule } from "./schedule.js";
export {
  createTarget,
  deleteTarget,
  listTargets,
  ownerOf,
  type TargetInput,
  type TargetPatch,
  type TargetScope,
  testTarget,
  updateTarget,
} from "./targets.js";
