import { and, asc, desc, eq, inArray, isNotNull, lt, lte, or } from "drizzle-orm";
import { backupRestores, backupSchedules, backups, jobs, projects } from "../../db/schema.js";
import type { AppDeps, RequestMeta } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { loseExpiredJobs } from "../jobs/jobs.js";
import { artifactKey, type BackupRow, beginBackup, failBackup, targetOfBackup } from "./backups.js";
import { startWaitingRestores } from "./restore.js";
import { S3Failure } from "./s3.js";
import { storeFor } from "./targets.js";

/**
 * The periodic work of backups, runtime-neutral: the Node entry calls it on a timer
 * (SUPAMANAGER_BACKUP_TICK_SECONDS); any runtime with a scheduler can call it the same way.
 * Several replicas may run it at once: due schedules are claimed with FOR UPDATE SKIP LOCKED,
 * and every status change is conditional on the status it expects.
 */

/** A backup whose job has not even reached its host after this long is failed. */
export const STUCK_PENDING_MS = 60 * 60 * 1000;
/** A backup row without a job this long after it was made lost its starter mid-way. */
const JOBLESS_MS = 10 * 60 * 1000;
const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;
/** Work per tick is bounded; what is left waits for the next tick. */
const BATCH = 20;

export interface MaintenanceReport {
  scheduledStarted: number;
  removed: number;
  stuckFailed: number;
  restoresStarted: number;
  jobsLost: number;
}

export async function runBackupMaintenance(deps: AppDeps): Promise<MaintenanceReport> {
  const log = deps.logger.child({ component: "backup-maintenance" });
  const meta: RequestMeta = { requestId: `tick_${deps.clock.now()}`, ip: undefined, userAgent: undefined };
  const report: MaintenanceReport = {
    scheduledStarted: 0,
    removed: 0,
    stuckFailed: 0,
    restoresStarted: 0,
    jobsLost: 0,
  };
  // Each step stands alone: one failing must not stop the others.
  const step = async (name: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (err) {
      log.error("backup maintenance step failed", { step: name, err });
    }
  };
  await step("lose expired jobs", async () => {
    report.jobsLost = await loseExpiredJobs(deps, log);
  });
  await step("fail stuck backups", async () => {
    report.stuckFailed = await failStuckBackups(deps);
  });
  await step("scheduled backups", async () => {
    report.scheduledStarted = await startDueBackups(deps, meta);
  });
  await step("retention", async () => {
    report.removed = await applyRetention(deps);
  });
  await step("waiting restores", async () => {
    report.restoresStarted = await startWaitingRestores(deps, meta, log);
  });
  return report;
}

/** Claim due schedules (advancing next_run_at in the claiming transaction), then start their backups. */
async function startDueBackups(deps: AppDeps, meta: RequestMeta): Promise<number> {
  const db = deps.database.db;
  const now = new Date(deps.clock.now());
  const claimed = await db.transaction(async (tx) => {
    const due = await tx
      .select()
      .from(backupSchedules)
      .where(and(eq(backupSchedules.enabled, true), lte(backupSchedules.nextRunAt, now)))
      .orderBy(asc(backupSchedules.nextRunAt))
      .limit(BATCH)
      .for("update", { skipLocked: true });
    for (const s of due) {
      await tx
        .update(backupSchedules)
        .set({ nextRunAt: new Date(now.getTime() + s.intervalHours * HOUR_MS), updatedAt: now })
        .where(eq(backupSchedules.projectId, s.projectId));
    }
    return due;
  });
  let started = 0;
  for (const s of claimed) {
    const [project] = await db.select().from(projects).where(eq(projects.id, s.projectId)).limit(1);
    if (!project || project.status === "REMOVED") continue;
    try {
      await beginBackup({ deps, db, meta, actor: null, project, trigger: "scheduled" });
      started++;
    } catch (err) {
      // Paused projects, a backup still running, no target: nothing to do until the next interval.
      if (err instanceof ApiError) {
        deps.logger.warn("scheduled backup not started", { ref: project.ref, reason: err.message });
      } else {
        deps.logger.error("scheduled backup failed to start", { ref: project.ref, err });
      }
    }
  }
  return started;
}

/** Which of a project's COMPLETED backups (newest first) the retention no longer keeps. */
export function beyondRetention(
  newestFirst: Pick<BackupRow, "id" | "createdAt">[],
  policy: { retentionCount: number | null; retentionDays: number | null },
  now: number,
): number[] {
  return newestFirst
    .filter(
      (b, i) =>
        (policy.retentionCount !== null && i >= policy.retentionCount) ||
        (policy.retentionDays !== null && b.createdAt.getTime() < now - policy.retentionDays * DAY_MS),
    )
    .map((b) => b.id);
}

/**
 * Remove COMPLETED backups the schedule's retention no longer keeps: claim the row (COMPLETED →
 * REMOVED), delete its objects; a failed delete puts the row back for the next tick. A backup
 * being restored from is kept.
 */
async function applyRetention(deps: AppDeps): Promise<number> {
  const db = deps.database.db;
  const policies = await db
    .select()
    .from(backupSchedules)
    .where(or(isNotNull(backupSchedules.retentionCount), isNotNull(backupSchedules.retentionDays)));
  let removed = 0;
  for (const p of policies) {
    if (p.retentionCount === null && p.retentionDays === null) continue;
    const completed = await db
      .select()
      .from(backups)
      .where(and(eq(backups.projectId, p.projectId), eq(backups.status, "COMPLETED")))
      .orderBy(desc(backups.createdAt), desc(backups.id));
    const ids = beyondRetention(completed, p, deps.clock.now());
    if (ids.length === 0) continue;
    const inUse = new Set(
      (
        await db
          .select({ id: backupRestores.backupId })
          .from(backupRestores)
          .where(and(inArray(backupRestores.backupId, ids), inArray(backupRestores.status, ["WAITING", "RUNNING"])))
      ).map((r) => r.id),
    );
    for (const b of completed.filter((x) => ids.includes(x.id) && !inUse.has(x.id)).slice(0, BATCH)) {
      if (await removeBackup(deps, b)) removed++;
    }
  }
  return removed;
}

async function removeBackup(deps: AppDeps, b: BackupRow): Promise<boolean> {
  const db = deps.database.db;
  const [claimed] = await db
    .update(backups)
    .set({ status: "REMOVED" })
    .where(and(eq(backups.id, b.id), eq(backups.status, "COMPLETED")))
    .returning({ id: backups.id });
  if (!claimed) return false;
  const target = await targetOfBackup(db, b).catch(() => null);
  if (!target) return true; // the objects are out of reach anyway
  const store = await storeFor(deps, target);
  try {
    await store.deleteObjects(b.artifacts.map((a) => artifactKey(b, a.name)));
    deps.logger.info("backup removed by retention", { backupId: b.id, ref: b.projectRef });
    return true;
  } catch (err) {
    await db
      .update(backups)
      .set({ status: "COMPLETED" })
      .where(and(eq(backups.id, b.id), eq(backups.status, "REMOVED")));
    deps.logger.warn("could not delete a backup's objects; retrying next tick", {
      backupId: b.id,
      code: err instanceof S3Failure ? err.code : "unknown",
    });
    return false;
  } finally {
    store.close();
  }
}

/**
 * Fail backups that cannot finish: PENDING with a job still queued after STUCK_PENDING_MS (the
 * host never took it; the job is failed too so it is not sent later), and rows whose starter
 * died before queueing a job. Running jobs end by their lease (loseExpiredJobs).
 */
async function failStuckBackups(deps: AppDeps): Promise<number> {
  const db = deps.database.db;
  const now = deps.clock.now();
  const stale = await db
    .select({ backup: backups, jobStatus: jobs.status })
    .from(backups)
    .leftJoin(jobs, eq(jobs.id, backups.jobId))
    .where(and(eq(backups.status, "PENDING"), lt(backups.createdAt, new Date(now - JOBLESS_MS))))
    .limit(BATCH);
  let failed = 0;
  for (const { backup: b, jobStatus } of stale) {
    const old = b.createdAt.getTime() < now - STUCK_PENDING_MS;
    if (b.jobId === null) {
      await failBackup(deps, b, "The backup was interrupted before its job was queued", deps.logger);
      failed++;
    } else if (jobStatus === "queued" && old) {
      const [job] = await db
        .update(jobs)
        .set({ status: "failed", error: "the host did not take the job in time", updatedAt: new Date(now) })
        .where(and(eq(jobs.id, b.jobId), eq(jobs.status, "queued")))
        .returning({ id: jobs.id });
      if (!job) continue; // delivered meanwhile
      await failBackup(
        deps,
        b,
        `The project's host did not take the backup job within ${STUCK_PENDING_MS / 60_000} minutes`,
        deps.logger,
      );
      failed++;
    }
  }
  return failed;
}
