import type { Context } from "hono";
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, shape } from "../../../lib/validate.js";
import type { BackupRow } from "../../../services/backups/backups.js";
import {
  downloadLink,
  getSchedule,
  listBackups,
  putSchedule,
  restoreInPlace,
  restoreToNewProject,
  startBackup,
} from "../../../services/backups/index.js";
import { projectForMember } from "../../../services/organizations/access.js";
import { DbPassword } from "../projects/create-project.js";
import { RefParam } from "../projects/schemas.js";

/**
 * Studio's backup endpoints under /platform/database/{ref}/backups (docs/backups.md). Logical
 * backups only: `isPhysicalBackup`, PITR and WAL-G are always false. Every route first resolves
 * the project for the caller (another organization's ref → 404), then checks the role.
 */

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** Studio's status vocabulary has no RUNNING: a backup being written reads PENDING. */
export function studioStatus(status: BackupRow["status"]): "COMPLETED" | "FAILED" | "PENDING" | "REMOVED" {
  return status === "RUNNING" ? "PENDING" : status;
}

const BackupItem = z.object({
  id: z.number(),
  inserted_at: z.string(),
  isPhysicalBackup: z.boolean(),
  project_id: z.number(),
  status: z.enum(["COMPLETED", "FAILED", "PENDING", "REMOVED"]),
  // SupaManager's own facts (Studio's objects are open):
  completed_at: z.string().nullable(),
  size_bytes: z.number().nullable(),
  encrypted: z.boolean(),
  trigger: z.enum(["manual", "scheduled"]),
  error: z.string().nullable(),
});

function item(b: BackupRow) {
  return shape(BackupItem, {
    id: b.id,
    inserted_at: b.createdAt.toISOString(),
    isPhysicalBackup: false,
    project_id: b.projectId,
    status: studioStatus(b.status),
    completed_at: b.completedAt?.toISOString() ?? null,
    size_bytes: b.sizeBytes,
    encrypted: b.encrypted,
    trigger: b.trigger,
    error: b.error,
  });
}

/** GET /platform/database/{ref}/backups → BackupsResponse. */
async function list(c: Context<AppEnv>): Promise<Response> {
  const { project, rows } = await listBackups(authed(c), refOf(c));
  return c.json({
    backups: rows.map(item),
    pitr_enabled: false,
    walg_enabled: false,
    region: project.region,
    physicalBackupData: {},
  });
}

/** GET …/downloadable-backups: the COMPLETED ones (a download link can be asked for each). */
async function downloadable(c: Context<AppEnv>): Promise<Response> {
  const { rows } = await listBackups(authed(c), refOf(c));
  return c.json({ backups: rows.filter((b) => b.status === "COMPLETED").map(item) });
}

/** POST /platform/database/{ref}/backups: take a backup now → 201 with the PENDING backup. */
async function start(c: Context<AppEnv>): Promise<Response> {
  return c.json(item(await startBackup(authed(c), refOf(c))), 201);
}

const IdBody = z.object({
  id: z.number({ error: "id (the backup's number) is required" }).int().positive().max(2_147_483_647),
});

async function restore(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const ref = refOf(c);
  await projectForMember(ctx, ref, "backups.admin");
  const { id } = await jsonBody(c, IdBody);
  const r = await restoreInPlace(ctx, ref, id);
  return c.json({ restore_id: r.id, backup_id: r.backupId, project_ref: r.projectRef, status: "RESTORING" }, 201);
}

const CloneBody = IdBody.extend({
  name: z.string({ error: "name is required" }).trim().min(1, "name must not be empty").max(64),
  // The same rule as project create: the clone's password reaches the same .env and connection strings.
  db_pass: DbPassword,
  region: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/)
    .optional(),
});

/** POST …/backups/restore-to-new-project: a new project in the same organization, restored once it is up. */
async function restoreToNew(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const ref = refOf(c);
  await projectForMember(ctx, ref, "backups.admin");
  const body = await jsonBody(c, CloneBody);
  const out = await restoreToNewProject(ctx, ref, {
    backupId: body.id,
    name: body.name,
    dbPass: body.db_pass,
    region: body.region,
  });
  return c.json(
    {
      restore_id: out.restore.id,
      backup_id: out.restore.backupId,
      project_ref: out.project.ref,
      project_id: out.project.id,
      status: "WAITING",
    },
    201,
  );
}

async function download(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const ref = refOf(c);
  await projectForMember(ctx, ref, "backups.manage");
  const { id } = await jsonBody(c, IdBody);
  return c.json({ fileUrl: await downloadLink(ctx, ref, id) });
}

const ScheduleBody = z
  .strictObject({
    enabled: z.boolean().default(true),
    interval_hours: z
      .number({ error: "interval_hours is required" })
      .int("interval_hours must be a whole number")
      .min(1, "interval_hours must be at least 1")
      .max(24 * 30, "interval_hours must be at most 720 (30 days)"),
    retention_count: z.number().int().min(1).max(1000).nullable().default(null),
    retention_days: z.number().int().min(1).max(3650).nullable().default(null),
  })
  .refine(
    (s) => !s.enabled || s.retention_count !== null || s.retention_days !== null,
    "an enabled schedule needs retention_count or retention_days (or both), so old backups are removed",
  );

function scheduleView(s: Awaited<ReturnType<typeof getSchedule>>) {
  return {
    enabled: s.enabled,
    interval_hours: s.intervalHours,
    retention_count: s.retentionCount,
    retention_days: s.retentionDays,
    next_run_at: s.nextRunAt?.toISOString() ?? null,
  };
}

async function readSchedule(c: Context<AppEnv>): Promise<Response> {
  return c.json(scheduleView(await getSchedule(authed(c), refOf(c))));
}

async function writeSchedule(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const ref = refOf(c);
  await projectForMember(ctx, ref, "backups.admin");
  const b = await jsonBody(c, ScheduleBody);
  return c.json(
    scheduleView(
      await putSchedule(ctx, ref, {
        enabled: b.enabled,
        intervalHours: b.interval_hours,
        retentionCount: b.retention_count,
        retentionDays: b.retention_days,
      }),
    ),
  );
}

/** /platform/database/{ref}/backups… (mounted at /platform/database). */
export function databaseBackupRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/:ref/backups", list);
  app.post("/:ref/backups", start);
  app.get("/:ref/backups/downloadable-backups", downloadable);
  app.post("/:ref/backups/download", download);
  app.post("/:ref/backups/restore", restore);
  app.post("/:ref/backups/restore-to-new-project", restoreToNew);
  app.get("/:ref/backups/schedule", readSchedule);
  app.put("/:ref/backups/schedule", writeSchedule);
  return app;
}
