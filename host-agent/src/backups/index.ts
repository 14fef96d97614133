import { BACKUP_JOB_KIND, RESTORE_JOB_KIND } from "@supamanager/shared";
import type { Jobs } from "../jobs/jobs.js";
import { runBackup } from "./backup.js";
import { type BackupDeps, PerProjectLock } from "./common.js";
import { runRestore } from "./restore.js";

export type { BackupDeps } from "./common.js";
export { cleanRestoreTmp } from "./restore.js";

/** Registers the `backup` and `restore` job kinds; jobs of one project run one at a time. */
export function registerBackupJobs(jobs: Jobs, deps: BackupDeps): void {
  const lock = new PerProjectLock();
  jobs.register(BACKUP_JOB_KIND, (job) => lock.run(job.ref ?? "", () => runBackup(job, deps)));
  jobs.register(RESTORE_JOB_KIND, (job) => lock.run(job.ref ?? "", () => runRestore(job, deps)));
}
