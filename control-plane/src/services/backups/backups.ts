import {
  BACKUP_JOB_KIND,
  BackupJobParams,
  BackupJobResult,
  ENCRYPTION_SCHEME,
  type Encryption,
  type JobResult,
  type UploadUrlsRequest,
  type UploadUrlsResponse,
} from "@supamanager/shared";
import { and, desc, eq, inArray } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { type BackupArtifactRow, backups, backupTargets, jobs, projects } from "../../db/schema.js";
import type { Actor, AppDeps, AuthedContext, RequestMeta } from "../../deps.js";
import { ApiError, badRequest, conflict, notFound } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { recordAudit } from "../audit/record.js";
import { enqueueJob, type JobRow } from "../jobs/jobs.js";
import { projectForMember } from "../organizations/access.js";
import { DOWNLOAD_URL_SECONDS, joinKey, type ObjectStore, S3Failure, UPLOAD_URL_SECONDS } from "./s3.js";
import { describeS3Failure, encryptionKeyOf, storeFor, type TargetRow, targetForOrg } from "./targets.js";

/**
 * Logical backups (ADR 0015). The control plane opens one multipart upload per artifact, queues a
 * `backup` job, signs UploadPart URLs when the agent asks for them, and completes (or aborts) the
 * uploads when the job answers. Backup bytes never pass through the control plane.
 */

export type BackupRow = typeof backups.$inferSelect;
type ProjectRow = typeof projects.$inferSelect;

/** Parts the agent uploads: big enough for 10,000 parts to hold 640 GiB, small enough to buffer. */
export const BACKUP_PART_BYTES = 64 * 1024 * 1024;

/** Statuses a project can be backed up (or restored) in: it runs and serves its data. */
export const SERVING_STATUSES = ["ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY", "RESTORE_FAILED"];

export const NO_TARGET_MESSAGE =
  "No backup storage is configured: an organization owner or administrator sets one at " +
  "/platform/organizations/{slug}/backup-targets, or the instance admin sets the instance's at /platform/backup-target";

/** The stored params of a backup job; the encryption key is added at delivery (deliver()). */
interface StoredBackupParams {
  backupId: string;
  partSizeBytes: number;
  artifacts: { name: string; source: Record<string, unknown> }[];
  /** Whether delivery adds the target's key (never stored in the job row). */
  encrypted: boolean;
}

export function artifactKey(b: Pick<BackupRow, "keyPrefix">, name: string): string {
  return joinKey(b.keyPrefix, name);
}

/** `<target prefix>/<ref>/<backup id>` */
function keyPrefixFor(target: TargetRow, ref: string, id: number): string {
  return joinKey(target.prefix, ref, String(id));
}

export interface BackupStart {
  deps: AppDeps;
  db: Executor;
  meta: RequestMeta;
  actor: Pick<Actor, "userId" | "email"> | null;
  project: ProjectRow;
  trigger: "manual" | "scheduled";
}

/**
 * Start a backup of a project: record it PENDING, open the multipart uploads, queue the job.
 * Throws ApiError (400/409) for what the caller can fix; a storage failure leaves a FAILED row
 * with the reason and answers 400 with S3's error code.
 */
export async function beginBackup(s: BackupStart): Promise<BackupRow> {
  const { deps, project } = s;
  const release = deps.releases.get(project.release);
  const artifacts = release?.backup?.artifacts;
  if (!artifacts || artifacts.length === 0) {
    throw badRequest(`Project ${project.ref} runs release ${project.release}, which defines no backup`);
  }
  if (!project.hostId || project.desiredState !== "running" || !SERVING_STATUSES.includes(project.status)) {
    throw conflict(`Project ${project.ref} cannot be backed up while its status is ${project.status}`);
  }
  const target = await targetForOrg(s.db, project.orgId);
  if (!target) throw badRequest(NO_TARGET_MESSAGE);
  const now = new Date(deps.clock.now());

  const created = await s.db.transaction(async (tx) => {
    // The project row lock serializes concurrent starts, so at most one backup is in flight.
    await tx.select({ id: projects.id }).from(projects).where(eq(projects.id, project.id)).for("update");
    const [busy] = await tx
      .select({ id: backups.id })
      .from(backups)
      .where(and(eq(backups.projectId, project.id), inArray(backups.status, ["PENDING", "RUNNING"])))
      .limit(1);
    if (busy) throw conflict(`Backup ${busy.id} of project ${project.ref} is still running`);
    const [row] = await tx
      .insert(backups)
      .values({
        projectId: project.id,
        projectRef: project.ref,
        orgId: project.orgId,
        targetId: target.id,
        status: "PENDING",
        trigger: s.trigger,
        encrypted: target.encryptionEnabled,
        artifacts: artifacts.map((a) => ({
          name: a.name,
          source: a.source,
          uploadId: null,
          sizeBytes: null,
          sha256: null,
        })),
        createdAt: now,
      })
      .returning();
    if (!row) throw new Error("backup insert returned nothing");
    const [withPrefix] = await tx
      .update(backups)
      .set({ keyPrefix: keyPrefixFor(target, project.ref, row.id) })
      .where(eq(backups.id, row.id))
      .returning();
    await recordAudit(tx, s.meta, {
      action: "backup.start",
      outcome: "success",
      actor: s.actor,
      orgId: project.orgId,
      projectRef: project.ref,
      target: String(row.id),
      details: { trigger: s.trigger, target_id: target.id, encrypted: target.encryptionEnabled },
    });
    return withPrefix as BackupRow;
  });

  const store = await storeFor(deps, target);
  const opened: BackupArtifactRow[] = [];
  try {
    for (const a of created.artifacts) {
      opened.push({ ...a, uploadId: await store.createUpload(artifactKey(created, a.name)) });
    }
  } catch (err) {
    await abortUploads(store, created, opened, deps.logger);
    store.close();
    const message =
      err instanceof S3Failure ? describeS3Failure(target, err) : "Could not open the uploads in backup storage";
    if (!(err instanceof S3Failure)) deps.logger.error("backup upload creation failed", { backupId: created.id, err });
    await s.db
      .update(backups)
      .set({ status: "FAILED", error: message, completedAt: new Date(deps.clock.now()) })
      .where(eq(backups.id, created.id));
    throw new ApiError("bad_request", message);
  }
  store.close();

  const params: StoredBackupParams = {
    backupId: String(created.id),
    partSizeBytes: BACKUP_PART_BYTES,
    artifacts: artifacts.map((a) => ({ name: a.name, source: a.source })),
    encrypted: created.encrypted,
  };
  const hostId = project.hostId;
  const started = await s.db.transaction(async (tx) => {
    const job = await enqueueJob(tx, now, {
      hostId,
      kind: BACKUP_JOB_KIND,
      projectRef: project.ref,
      params: { ...params },
      idempotencyKey: `backup:${created.id}`,
    });
    const [row] = await tx
      .update(backups)
      .set({ artifacts: opened, jobId: job.id })
      .where(eq(backups.id, created.id))
      .returning();
    return row as BackupRow;
  });
  await deps.hub.kick(hostId);
  return started;
}

/** Abort what was opened (best effort: a failure is logged, the bucket's lifecycle rules can clean up). */
async function abortUploads(store: ObjectStore, b: BackupRow, artifacts: BackupArtifactRow[], log: Logger) {
  for (const a of artifacts) {
    if (!a.uploadId) continue;
    try {
      await store.abortUpload(artifactKey(b, a.name), a.uploadId);
    } catch (err) {
      log.warn("could not abort a backup upload", {
        backupId: b.id,
        artifact: a.name,
        code: err instanceof S3Failure ? err.code : "unknown",
      });
    }
  }
}

/** POST …/backups (on demand), by a member allowed backups.manage. */
export async function startBackup(ctx: AuthedContext, ref: string): Promise<BackupRow> {
  const { project } = await projectForMember(ctx, ref, "backups.manage");
  return beginBackup({
    deps: ctx.deps,
    db: ctx.db,
    meta: ctx.meta,
    actor: ctx.actor,
    project,
    trigger: "manual",
  });
}

export async function listBackups(
  ctx: AuthedContext,
  ref: string,
): Promise<{ project: ProjectRow; rows: BackupRow[] }> {
  const { project } = await projectForMember(ctx, ref, "backups.read");
  const rows = await ctx.db
    .select()
    .from(backups)
    .where(eq(backups.projectId, project.id))
    .orderBy(desc(backups.createdAt), desc(backups.id))
    .limit(500);
  return { project, rows };
}

/** The newest COMPLETED backup of a project (Studio's pause/status `latest_downloadable_backup_id`). */
export async function latestDownloadableBackupId(db: Executor, projectRef: string): Promise<number | null> {
  const [row] = await db
    .select({ id: backups.id })
    .from(backups)
    .where(and(eq(backups.projectRef, projectRef), eq(backups.status, "COMPLETED")))
    .orderBy(desc(backups.createdAt), desc(backups.id))
    .limit(1);
  return row?.id ?? null;
}

/** A backup of the project (by its numeric id); another project's backup is "not found". */
export async function backupOfProject(db: Executor, project: ProjectRow, id: number): Promise<BackupRow> {
  const [row] = await db
    .select()
    .from(backups)
    .where(and(eq(backups.id, id), eq(backups.projectId, project.id)))
    .limit(1);
  if (!row) throw notFound(`Backup ${id} not found`);
  return row;
}

export async function targetOfBackup(db: Executor, b: BackupRow): Promise<TargetRow> {
  if (!b.targetId) throw conflict(`Backup ${b.id} is out of reach: its storage target was deleted`);
  const [row] = await db.select().from(backupTargets).where(eq(backupTargets.id, b.targetId)).limit(1);
  if (!row) throw conflict(`Backup ${b.id} is out of reach: its storage target was deleted`);
  return row;
}

/** A 15-minute link to the database dump of a COMPLETED backup. */
export async function downloadLink(ctx: AuthedContext, ref: string, id: number): Promise<string> {
  const { project, org } = await projectForMember(ctx, ref, "backups.manage");
  const b = await backupOfProject(ctx.db, project, id);
  if (b.status !== "COMPLETED") throw conflict(`Backup ${id} cannot be downloaded while its status is ${b.status}`);
  const dump = b.artifacts.find((a) => a.source.kind === "pg_dump") ?? b.artifacts[0];
  if (!dump) throw conflict(`Backup ${id} has no database dump`);
  const target = await targetOfBackup(ctx.db, b);
  const store = await storeFor(ctx.deps, target);
  try {
    const url = await store.presignGet(
      artifactKey(b, dump.name),
      DOWNLOAD_URL_SECONDS,
      `${project.ref}-backup-${b.id}-${dump.name}`,
    );
    await recordAudit(ctx.db, ctx.meta, {
      action: "backup.download",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: project.ref,
      target: String(b.id),
      details: { artifact: dump.name, encrypted: b.encrypted, expires_in_seconds: DOWNLOAD_URL_SECONDS },
    });
    return url;
  } finally {
    store.close();
  }
}

/** The backup a `backup` job writes (by job id). */
async function backupOfJob(db: Executor, jobId: string): Promise<BackupRow | null> {
  const [row] = await db.select().from(backups).where(eq(backups.jobId, jobId)).limit(1);
  return row ?? null;
}

/**
 * POST /agent/v1/jobs/{jobId}/upload-urls: presigned UploadPart URLs for a running backup job of
 * THIS host. Anything else (another host's job, a finished one, another kind, an artifact not in
 * the job) is 404/409 without detail beyond what the agent already knows.
 */
export async function uploadUrls(
  deps: AppDeps,
  db: Executor,
  hostId: string,
  jobId: string,
  req: UploadUrlsRequest,
): Promise<UploadUrlsResponse> {
  const [job] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.id, jobId), eq(jobs.hostId, hostId)))
    .limit(1);
  if (!job || job.kind !== BACKUP_JOB_KIND) throw notFound(`Job ${jobId} not found`);
  if (job.status !== "running") throw conflict(`Job ${jobId} is ${job.status}, not running`);
  const b = await backupOfJob(db, job.id);
  if (!b || (b.status !== "PENDING" && b.status !== "RUNNING")) {
    throw conflict(`The backup of job ${jobId} is no longer being written`);
  }
  const artifact = b.artifacts.find((a) => a.name === req.artifact);
  if (!artifact?.uploadId) throw notFound(`Artifact ${req.artifact} is not part of job ${jobId}`);
  if (b.status === "PENDING") {
    await db
      .update(backups)
      .set({ status: "RUNNING" })
      .where(and(eq(backups.id, b.id), eq(backups.status, "PENDING")));
  }
  const target = await targetOfBackup(db, b);
  const store = await storeFor(deps, target);
  try {
    const expiresAt = new Date(Date.now() + UPLOAD_URL_SECONDS * 1000);
    const key = artifactKey(b, artifact.name);
    const unique = [...new Set(req.partNumbers)].sort((x, y) => x - y);
    const urls = [];
    for (const partNumber of unique) {
      urls.push({ partNumber, url: await store.presignPart(key, artifact.uploadId, partNumber) });
    }
    // Presigning is local computation; the URLs are signed with the real clock, so their
    // expiry is stated in real time too.
    return { urls, expiresAt: expiresAt.toISOString() };
  } finally {
    store.close();
  }
}

async function settleBackup(
  deps: AppDeps,
  b: BackupRow,
  patch: Partial<typeof backups.$inferInsert>,
): Promise<boolean> {
  const [row] = await deps.database.db
    .update(backups)
    .set({ ...patch, completedAt: new Date(deps.clock.now()) })
    .where(and(eq(backups.id, b.id), inArray(backups.status, ["PENDING", "RUNNING"])))
    .returning({ id: backups.id });
  return row !== undefined;
}

/** Fail a backup: abort its uploads, record why. Idempotent (a settled backup is left alone). */
export async function failBackup(deps: AppDeps, b: BackupRow, reason: string, log: Logger): Promise<void> {
  const target = b.targetId ? await targetOfBackup(deps.database.db, b).catch(() => null) : null;
  if (target) {
    const store = await storeFor(deps, target);
    try {
      await abortUploads(store, b, b.artifacts, log);
    } finally {
      store.close();
    }
  }
  const settled = await settleBackup(deps, b, {
    status: "FAILED",
    error: reason.slice(0, 2000),
    artifacts: b.artifacts.map((a) => ({ ...a, uploadId: null })),
  });
  if (settled) log.warn("backup failed", { backupId: b.id, ref: b.projectRef, reason: reason.slice(0, 500) });
}

/**
 * A successful `backup` job: complete each artifact's multipart upload with the agent's parts,
 * check the stored size against what the agent reported, record sizes and SHA-256 sums.
 */
async function completeBackup(deps: AppDeps, b: BackupRow, raw: unknown, log: Logger): Promise<void> {
  const parsed = BackupJobResult.safeParse(raw);
  if (!parsed.success) {
    await failBackup(deps, b, "The agent's backup result was malformed", log);
    return;
  }
  const reported = new Map(parsed.data.artifacts.map((a) => [a.name, a]));
  const missing = b.artifacts.filter((a) => !reported.has(a.name)).map((a) => a.name);
  if (missing.length > 0) {
    await failBackup(deps, b, `The agent reported no result for ${missing.join(", ")}`, log);
    return;
  }
  const target = await targetOfBackup(deps.database.db, b).catch(() => null);
  if (!target) {
    await failBackup(deps, b, "The backup's storage target was deleted while it ran", log);
    return;
  }
  const store = await storeFor(deps, target);
  const done: BackupArtifactRow[] = [];
  try {
    for (const a of b.artifacts) {
      const r = reported.get(a.name);
      if (!r || !a.uploadId) throw new Error(`artifact ${a.name} has no upload`);
      const key = artifactKey(b, a.name);
      await store.completeUpload(key, a.uploadId, r.parts);
      done.push({ ...a, uploadId: null });
      const size = await store.sizeOf(key);
      if (size !== r.sizeBytes) {
        throw new SizeMismatch(`${a.name} is ${size ?? "missing"} bytes in storage, the agent sent ${r.sizeBytes}`);
      }
      done[done.length - 1] = { ...a, uploadId: null, sizeBytes: r.sizeBytes, sha256: r.sha256 };
    }
  } catch (err) {
    // Completed objects of a failed backup are deleted; the rest are aborted by failBackup.
    await store.deleteObjects(done.map((a) => artifactKey(b, a.name))).catch(() => undefined);
    store.close();
    const reason =
      err instanceof S3Failure
        ? describeS3Failure(target, err)
        : err instanceof SizeMismatch
          ? `Stored size check failed: ${err.message}`
          : "Could not complete the uploads";
    if (!(err instanceof S3Failure) && !(err instanceof SizeMismatch)) {
      log.error("backup completion failed", { backupId: b.id, err });
    }
    const doneNames = new Set(done.map((a) => a.name));
    await failBackup(
      deps,
      { ...b, artifacts: b.artifacts.map((a) => (doneNames.has(a.name) ? { ...a, uploadId: null } : a)) },
      reason,
      log,
    );
    return;
  }
  store.close();
  const total = done.reduce((n, a) => n + (a.sizeBytes ?? 0), 0);
  await settleBackup(deps, b, { status: "COMPLETED", artifacts: done, sizeBytes: total, error: null });
  log.info("backup completed", { backupId: b.id, ref: b.projectRef, sizeBytes: total });
}

class SizeMismatch extends Error {}

/** Builds the BackupJobParams the agent receives: the stored params plus the target's key. */
async function deliverBackup(deps: AppDeps, job: JobRow): Promise<Record<string, unknown>> {
  const stored = job.params as unknown as StoredBackupParams;
  let encryption: Encryption | undefined;
  if (stored.encrypted) {
    const b = await backupOfJob(deps.database.db, job.id);
    if (!b) throw new Error(`no backup for job ${job.id}`);
    const key = await encryptionKeyOf(deps, await targetOfBackup(deps.database.db, b));
    if (!key) throw new Error(`backup ${b.id} is to be encrypted but its target has no key`);
    encryption = { scheme: ENCRYPTION_SCHEME, keyBase64: key };
  }
  return BackupJobParams.parse({
    backupId: stored.backupId,
    partSizeBytes: stored.partSizeBytes,
    artifacts: stored.artifacts,
    ...(encryption ? { encryption } : {}),
  });
}

type BackupSettled = (deps: AppDeps, backupId: number) => Promise<void>;
const settledListeners: BackupSettled[] = [];

/** Run `fn` when a backup's job has answered or was lost (an upgrade waits for its backup). */
export function onBackupSettled(fn: BackupSettled): void {
  settledListeners.push(fn);
}

async function tellSettled(deps: AppDeps, b: BackupRow, log: Logger): Promise<void> {
  for (const fn of settledListeners) {
    try {
      await fn(deps, b.id);
    } catch (err) {
      log.error("a backup-settled listener failed", { backupId: b.id, err });
    }
  }
}

export const backupJobHandler = {
  deliver: deliverBackup,
  async onResult(deps: AppDeps, job: JobRow, result: JobResult): Promise<void> {
    const b = await backupOfJob(deps.database.db, job.id);
    if (!b) return;
    const log = deps.logger.child({ jobId: job.id, backupId: b.id });
    if (result.ok) await completeBackup(deps, b, result.result, log);
    else await failBackup(deps, b, `The agent could not take the backup: ${result.error ?? "no reason given"}`, log);
    await tellSettled(deps, b, log);
  },
  async onLost(deps: AppDeps, job: JobRow, reason: string): Promise<void> {
    const b = await backupOfJob(deps.database.db, job.id);
    if (!b) return;
    const log = deps.logger.child({ jobId: job.id, backupId: b.id });
    await failBackup(deps, b, reason, log);
    await tellSettled(deps, b, log);
  },
};
