import {
  ENCRYPTION_SCHEME,
  type JobResult,
  RESTORE_JOB_KIND,
  RestoreJobParams,
  RestoreJobResult,
} from "@supamanager/shared";
import { and, eq, inArray } from "drizzle-orm";
import type { Database, Executor } from "../../db/index.js";
import { backupRestores, backups, projects } from "../../db/schema.js";
import type { Actor, AppDeps, AuthedContext, RequestMeta } from "../../deps.js";
import { conflict } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { recordAudit } from "../audit/record.js";
import { enqueueJob, type JobRow } from "../jobs/jobs.js";
import { projectForMember } from "../organizations/access.js";
import { createProject } from "../projects/create.js";
import type { ComputeSize, ProjectView } from "../projects/model.js";
import { artifactKey, type BackupRow, backupOfProject, SERVING_STATUSES, targetOfBackup } from "./backups.js";
import { RESTORE_URL_SECONDS } from "./s3.js";
import { encryptionKeyOf, storeFor } from "./targets.js";

/**
 * Restores (ADR 0015). In place: the project goes RESTORING while a `restore` job runs on its
 * host, then ACTIVE_HEALTHY, or RESTORE_FAILED with the reason (the agent keeps the old data
 * serving when a restore fails). Into a new project: the project is created like any other and
 * a WAITING restore row is left for the maintenance tick, which starts the restore once the new
 * project is ACTIVE_HEALTHY.
 */

export type RestoreRow = typeof backupRestores.$inferSelect;

/** What the job row stores; URLs and the key are made at delivery (deliverRestore). */
interface StoredRestoreParams {
  backupId: string;
  restoreId: number;
}

function restorable(b: BackupRow): void {
  if (b.status !== "COMPLETED") throw conflict(`Backup ${b.id} cannot be restored while its status is ${b.status}`);
  if (b.artifacts.some((a) => a.sizeBytes === null || a.sha256 === null)) {
    throw conflict(`Backup ${b.id} has no recorded checksums and cannot be restored`);
  }
}

interface RestoreStart {
  deps: AppDeps;
  db: Executor;
  meta: RequestMeta;
  actor: Pick<Actor, "userId" | "email"> | null;
  projectId: number;
  backup: BackupRow;
  /** A WAITING row to start (clone); absent → a new in-place restore row. */
  waitingId?: number;
}

/** Put the project in RESTORING and queue the restore job, atomically. */
export async function beginRestore(s: RestoreStart): Promise<RestoreRow> {
  const now = new Date(s.deps.clock.now());
  const { row, hostId } = await s.db.transaction(async (tx) => {
    const [p] = await tx.select().from(projects).where(eq(projects.id, s.projectId)).for("update");
    if (!p) throw conflict("The project to restore into no longer exists");
    if (!p.hostId || p.desiredState !== "running" || !SERVING_STATUSES.includes(p.status) || p.restoreJobId) {
      throw conflict(`Project ${p.ref} cannot be restored while its status is ${p.status}`);
    }
    const [busy] = await tx
      .select({ id: backups.id })
      .from(backups)
      .where(and(eq(backups.projectId, p.id), inArray(backups.status, ["PENDING", "RUNNING"])))
      .limit(1);
    if (busy) throw conflict(`Backup ${busy.id} of project ${p.ref} is running; restore when it has finished`);
    let restore: RestoreRow | undefined;
    if (s.waitingId !== undefined) {
      [restore] = await tx
        .update(backupRestores)
        .set({ status: "RUNNING", updatedAt: now })
        .where(and(eq(backupRestores.id, s.waitingId), eq(backupRestores.status, "WAITING")))
        .returning();
      if (!restore) throw conflict("The restore was started meanwhile");
    } else {
      [restore] = await tx
        .insert(backupRestores)
        .values({
          backupId: s.backup.id,
          projectId: p.id,
          projectRef: p.ref,
          orgId: p.orgId,
          status: "RUNNING",
          createdAt: now,
          updatedAt: now,
        })
        .returning();
    }
    if (!restore) throw new Error("restore row missing");
    const params: StoredRestoreParams = { backupId: String(s.backup.id), restoreId: restore.id };
    const job = await enqueueJob(tx, now, {
      hostId: p.hostId,
      kind: RESTORE_JOB_KIND,
      projectRef: p.ref,
      params: { ...params },
      idempotencyKey: `restore:${restore.id}`,
    });
    const [started] = await tx
      .update(backupRestores)
      .set({ jobId: job.id })
      .where(eq(backupRestores.id, restore.id))
      .returning();
    await tx
      .update(projects)
      .set({ status: "RESTORING", statusReason: null, restoreJobId: job.id, updatedAt: now })
      .where(eq(projects.id, p.id));
    await recordAudit(tx, s.meta, {
      action: "backup.restore",
      outcome: "success",
      actor: s.actor,
      orgId: p.orgId,
      projectRef: p.ref,
      target: String(s.backup.id),
      details: {
        restore_id: restore.id,
        from_project: s.backup.projectRef,
        from_status: p.status,
        job_id: job.id,
      },
    });
    return { row: started as RestoreRow, hostId: p.hostId };
  });
  await s.deps.hub.kick(hostId);
  return row;
}

/** POST /platform/database/{ref}/backups/restore: restore a backup of the project into itself. */
export async function restoreInPlace(ctx: AuthedContext, ref: string, backupId: number): Promise<RestoreRow> {
  const { project } = await projectForMember(ctx, ref, "backups.admin");
  const b = await backupOfProject(ctx.db, project, backupId);
  restorable(b);
  await targetOfBackup(ctx.db, b);
  return beginRestore({
    deps: ctx.deps,
    db: ctx.db,
    meta: ctx.meta,
    actor: ctx.actor,
    projectId: project.id,
    backup: b,
  });
}

export interface CloneInput {
  backupId: number;
  name: string;
  dbPass: string;
  region?: string | undefined;
}

/**
 * Restore a backup into a NEW project of the same organization: the project is created as usual
 * (same compute size and provider as the source), with a WAITING restore that the maintenance
 * tick starts once the project is ACTIVE_HEALTHY. Creation and the restore row commit together.
 */
export async function restoreToNewProject(
  ctx: AuthedContext,
  ref: string,
  input: CloneInput,
): Promise<{ project: ProjectView; restore: RestoreRow }> {
  const { project: source, org } = await projectForMember(ctx, ref, "backups.admin");
  const b = await backupOfProject(ctx.db, source, input.backupId);
  restorable(b);
  await targetOfBackup(ctx.db, b);
  const now = new Date(ctx.deps.clock.now());
  const out = await ctx.db.transaction(async (tx) => {
    const view = await createProject(
      { ...ctx, db: tx as unknown as Database },
      {
        name: input.name,
        organizationSlug: org.slug,
        dbPass: input.dbPass,
        cloudProvider: source.cloudProvider,
        region: input.region ?? source.region,
        computeSize: source.computeSize as ComputeSize,
      },
    );
    const [restore] = await tx
      .insert(backupRestores)
      .values({
        backupId: b.id,
        projectId: view.id,
        projectRef: view.ref,
        orgId: org.id,
        status: "WAITING",
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    await recordAudit(tx, ctx.meta, {
      action: "backup.restore_to_new_project",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: source.ref,
      target: String(b.id),
      details: { new_project: view.ref, restore_id: restore?.id },
    });
    return { project: view, restore: restore as RestoreRow };
  });
  // createProject kicked inside the transaction, before the project was visible: kick again.
  if (out.project.hostId) await ctx.deps.hub.kick(out.project.hostId);
  return out;
}

/** Project statuses after which a WAITING restore can never start. */
const NEVER_COMING_UP = ["INIT_FAILED", "GOING_DOWN", "REMOVED", "PAUSING", "INACTIVE"];

/**
 * Start WAITING restores whose new project is ACTIVE_HEALTHY; fail those whose project will not
 * come up. Called by the maintenance tick. Returns how many restores started.
 */
export async function startWaitingRestores(deps: AppDeps, meta: RequestMeta, log: Logger): Promise<number> {
  const db = deps.database.db;
  const waiting = await db
    .select({ restore: backupRestores, status: projects.status, backup: backups })
    .from(backupRestores)
    .innerJoin(projects, eq(projects.id, backupRestores.projectId))
    .innerJoin(backups, eq(backups.id, backupRestores.backupId))
    .where(eq(backupRestores.status, "WAITING"))
    .limit(50);
  let started = 0;
  for (const w of waiting) {
    if (w.status === "ACTIVE_HEALTHY") {
      try {
        restorable(w.backup);
        await beginRestore({
          deps,
          db,
          meta,
          actor: null,
          projectId: w.restore.projectId,
          backup: w.backup,
          waitingId: w.restore.id,
        });
        started++;
      } catch (err) {
        const reason = err instanceof Error ? err.message : "the restore could not start";
        await failWaiting(deps, w.restore.id, reason);
        log.warn("a waiting restore could not start", { restoreId: w.restore.id, reason });
      }
    } else if (NEVER_COMING_UP.includes(w.status)) {
      await failWaiting(deps, w.restore.id, `The new project did not come up (status ${w.status})`);
    }
  }
  return started;
}

async function failWaiting(deps: AppDeps, id: number, reason: string): Promise<void> {
  await deps.database.db
    .update(backupRestores)
    .set({ status: "FAILED", error: reason.slice(0, 2000), updatedAt: new Date(deps.clock.now()) })
    .where(and(eq(backupRestores.id, id), eq(backupRestores.status, "WAITING")));
}

async function restoreOfJob(db: Executor, jobId: string): Promise<RestoreRow | null> {
  const [row] = await db.select().from(backupRestores).where(eq(backupRestores.jobId, jobId)).limit(1);
  return row ?? null;
}

/** Builds RestoreJobParams at delivery: GET URLs valid RESTORE_URL_SECONDS, sizes and sums, the key. */
async function deliverRestore(deps: AppDeps, job: JobRow): Promise<Record<string, unknown>> {
  const db = deps.database.db;
  const stored = job.params as unknown as StoredRestoreParams;
  const [b] = await db
    .select()
    .from(backups)
    .where(eq(backups.id, Number(stored.backupId)))
    .limit(1);
  if (!b) throw new Error(`backup ${stored.backupId} of job ${job.id} is gone`);
  const target = await targetOfBackup(db, b);
  const store = await storeFor(deps, target);
  try {
    const artifacts = [];
    for (const a of b.artifacts) {
      // A missing object still gets a URL: the agent fails on its 404 and the project keeps serving.
      artifacts.push({
        name: a.name,
        sizeBytes: a.sizeBytes ?? 0,
        sha256: a.sha256 ?? "",
        source: a.source,
        url: await store.presignGet(artifactKey(b, a.name), RESTORE_URL_SECONDS),
      });
    }
    const key = b.encrypted ? await encryptionKeyOf(deps, target) : null;
    if (b.encrypted && !key) throw new Error(`backup ${b.id} is encrypted but its target has no key`);
    return RestoreJobParams.parse({
      backupId: String(b.id),
      artifacts,
      ...(key ? { encryption: { scheme: ENCRYPTION_SCHEME, keyBase64: key } } : {}),
    });
  } finally {
    store.close();
  }
}

async function finishRestore(deps: AppDeps, job: JobRow, ok: boolean, reason: string | null, log: Logger) {
  const r = await restoreOfJob(deps.database.db, job.id);
  if (!r) return;
  const now = new Date(deps.clock.now());
  await deps.database.db.transaction(async (tx) => {
    const [settled] = await tx
      .update(backupRestores)
      .set({ status: ok ? "COMPLETED" : "FAILED", error: reason?.slice(0, 2000) ?? null, updatedAt: now })
      .where(and(eq(backupRestores.id, r.id), eq(backupRestores.status, "RUNNING")))
      .returning({ id: backupRestores.id });
    if (!settled) return;
    // Only while this job still owns the project's RESTORING (a deletion meanwhile wins).
    await tx
      .update(projects)
      .set(
        ok
          ? { status: "ACTIVE_HEALTHY", statusReason: null, restoreJobId: null, updatedAt: now }
          : {
              status: "RESTORE_FAILED",
              statusReason:
                `Restoring backup ${r.backupId} failed: ${reason ?? "no reason given"}. The project still serves the data it had before.`.slice(
                  0,
                  2000,
                ),
              restoreJobId: null,
              updatedAt: now,
            },
      )
      .where(and(eq(projects.id, r.projectId), eq(projects.restoreJobId, job.id)));
    // A project whose status moved on (deleted) still drops the marker.
    await tx
      .update(projects)
      .set({ restoreJobId: null })
      .where(and(eq(projects.id, r.projectId), eq(projects.restoreJobId, job.id)));
  });
  if (ok) log.info("restore completed", { restoreId: r.id, ref: r.projectRef, backupId: r.backupId });
  else log.warn("restore failed", { restoreId: r.id, ref: r.projectRef, reason: reason?.slice(0, 500) });
}

export const restoreJobHandler = {
  deliver: deliverRestore,
  async onResult(deps: AppDeps, job: JobRow, result: JobResult): Promise<void> {
    const log = deps.logger.child({ jobId: job.id });
    if (!result.ok) {
      await finishRestore(deps, job, false, result.error ?? "the agent gave no reason", log);
      return;
    }
    const parsed = RestoreJobResult.safeParse(result.result ?? {});
    if (!parsed.success) {
      // The agent says it restored; a malformed summary does not undo that.
      log.warn("restore result summary was malformed", { jobId: job.id });
    }
    await finishRestore(deps, job, true, null, log);
  },
  async onLost(deps: AppDeps, job: JobRow, reason: string): Promise<void> {
    await finishRestore(deps, job, false, reason, deps.logger.child({ jobId: job.id }));
  },
};
