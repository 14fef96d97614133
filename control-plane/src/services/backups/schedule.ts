import { eq } from "drizzle-orm";
import { backupSchedules } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { recordAudit } from "../audit/record.js";
import { projectForMember } from "../organizations/access.js";

/**
 * A project's automatic backups: every `intervalHours` hours (the maintenance tick starts them),
 * keeping COMPLETED backups within the retention (a count, an age, or both).
 */

export type ScheduleRow = typeof backupSchedules.$inferSelect;

export interface ScheduleInput {
  enabled: boolean;
  intervalHours: number;
  retentionCount: number | null;
  retentionDays: number | null;
}

export interface ScheduleView extends ScheduleInput {
  nextRunAt: Date | null;
}

const HOUR_MS = 3600 * 1000;

export async function getSchedule(ctx: AuthedContext, ref: string): Promise<ScheduleView> {
  const { project } = await projectForMember(ctx, ref, "backups.read");
  const [row] = await ctx.db.select().from(backupSchedules).where(eq(backupSchedules.projectId, project.id)).limit(1);
  if (!row) return { enabled: false, intervalHours: 24, retentionCount: null, retentionDays: null, nextRunAt: null };
  return {
    enabled: row.enabled,
    intervalHours: row.intervalHours,
    retentionCount: row.retentionCount,
    retentionDays: row.retentionDays,
    nextRunAt: row.enabled ? row.nextRunAt : null,
  };
}

/** Set the schedule; the next run is one interval from now (a change restarts the interval). */
export async function putSchedule(ctx: AuthedContext, ref: string, input: ScheduleInput): Promise<ScheduleView> {
  const { project, org } = await projectForMember(ctx, ref, "backups.admin");
  const now = new Date(ctx.deps.clock.now());
  const nextRunAt = new Date(now.getTime() + input.intervalHours * HOUR_MS);
  const values = {
    enabled: input.enabled,
    intervalHours: input.intervalHours,
    retentionCount: input.retentionCount,
    retentionDays: input.retentionDays,
    nextRunAt,
    updatedAt: now,
  };
  await ctx.db.transaction(async (tx) => {
    await tx
      .insert(backupSchedules)
      .values({ projectId: project.id, ...values, createdAt: now })
      .onConflictDoUpdate({ target: backupSchedules.projectId, set: values });
    await recordAudit(tx, ctx.meta, {
      action: "backup.schedule.update",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: project.ref,
      target: project.ref,
      details: {
        enabled: input.enabled,
        interval_hours: input.intervalHours,
        retention_count: input.retentionCount,
        retention_days: input.retentionDays,
      },
    });
  });
  return { ...input, nextRunAt: input.enabled ? nextRunAt : null };
}
