import { randomUUID } from "node:crypto";
import { type Job, type JobResult, PROTOCOL_VERSION } from "@supamanager/shared";
import { and, asc, eq, inArray, lt, notInArray, sql } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { jobs } from "../../db/schema.js";
import type { AppDeps } from "../../deps.js";
import type { Logger } from "../../logger.js";

/**
 * Imperative work for an agent (backups, restores, …), durable in the `jobs` table and delivered
 * at least once by whichever process holds the host's connection (ADR 0014): a kick or a
 * (re)connect sends every queued job, and every job still running after a reconnect of the SAME
 * agent process (the agent answers a job id it has seen with its first result). A job running
 * when the agent process restarted (new boot id) is failed, because its work died with the
 * process — unless its kind survives a restart (JobKindHandler.survivesAgentRestart). What a kind does with its result lives in the kind's handler (JOB_KINDS).
 */

export type JobRow = typeof jobs.$inferSelect;

/** How long a running job may go without an answer before the sweep fails it. */
export const DEFAULT_JOB_LEASE_MS = 6 * 60 * 60 * 1000;

export interface JobKindHandler {
  /** The agent answered (ok or not); runs after the job row is updated, outside its transaction. */
  onResult(deps: AppDeps, job: JobRow, result: JobResult): Promise<void>;
  /** The job failed without an answer (agent restarted, lease expired, host removed). */
  onLost(deps: AppDeps, job: JobRow, reason: string): Promise<void>;
  /**
   * The params as sent to the agent, built at delivery from the stored ones. Lets a kind keep
   * secrets and short-lived credentials (an encryption key, presigned URLs) out of the stored
   * row. Throwing fails the job at once (onLost runs).
   */
  deliver?(deps: AppDeps, job: JobRow): Promise<Record<string, unknown>>;
  /**
   * The agent finishes (or undoes) this kind's work after a restart and answers the job when it
   * is delivered again (e.g. `upgrade`, from its journal): a restart does not fail it.
   */
  survivesAgentRestart?: boolean;
}

const handlers = new Map<string, JobKindHandler>();

/** The onLost reason of a job whose params could not be built: it never reached the agent. */
export const UNSENDABLE_REASON = "the job could not be prepared for sending";

/** Features register what happens when their jobs finish (e.g. services/backups). */
export function registerJobKind(kind: string, handler: JobKindHandler): void {
  handlers.set(kind, handler);
}

export interface NewJob {
  hostId: string;
  kind: string;
  projectRef?: string | undefined;
  params?: Record<string, unknown>;
  /** A second enqueue with the same key returns the first job instead of a new one. */
  idempotencyKey?: string | undefined;
  /** How long the job may run (from delivery) before the sweep fails it. */
  leaseMs?: number;
}

/** Queue a job (call inside the transaction that records why), then `deps.hub.kick(hostId)`. */
export async function enqueueJob(db: Executor, now: Date, job: NewJob): Promise<JobRow> {
  const row: typeof jobs.$inferInsert = {
    id: `job_${randomUUID()}`,
    hostId: job.hostId,
    kind: job.kind,
    projectRef: job.projectRef ?? null,
    params: job.params ?? {},
    idempotencyKey: job.idempotencyKey ?? null,
    leaseMs: job.leaseMs ?? DEFAULT_JOB_LEASE_MS,
    createdAt: now,
  };
  const [created] = await db.insert(jobs).values(row).onConflictDoNothing({ target: jobs.idempotencyKey }).returning();
  if (created) return created;
  const [existing] = await db
    .select()
    .from(jobs)
    .where(eq(jobs.idempotencyKey, job.idempotencyKey as string))
    .limit(1);
  if (!existing) throw new Error("job idempotency conflict without a row");
  return existing;
}

/**
 * The `job` frames a connection should send now: queued jobs of the host (marked running), and
 * running jobs this connection has not sent yet (`sentHere`), i.e. a re-delivery after a reconnect.
 */
export async function jobsToSend(deps: AppDeps, hostId: string, sentHere: ReadonlySet<string>): Promise<Job[]> {
  const db = deps.database.db;
  const now = new Date(deps.clock.now());
  const rows = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.hostId, hostId), inArray(jobs.status, ["queued", "running"])))
    .orderBy(asc(jobs.createdAt));
  const out: Job[] = [];
  for (const r of rows) {
    if (r.status === "running" && sentHere.has(r.id)) continue;
    if (r.status === "queued") {
      const [claimed] = await db
        .update(jobs)
        .set({
          status: "running",
          attempts: sql`${jobs.attempts} + 1`,
          leaseUntil: new Date(now.getTime() + r.leaseMs),
          updatedAt: now,
        })
        .where(and(eq(jobs.id, r.id), eq(jobs.status, "queued")))
        .returning({ id: jobs.id });
      if (!claimed) continue; // another process took it
    }
    const deliver = handlers.get(r.kind)?.deliver;
    let params = r.params;
    if (deliver) {
      try {
        params = await deliver(deps, r);
      } catch (err) {
        deps.logger.error("could not build a job's params", { jobId: r.id, kind: r.kind, err });
        // Unsendable now means unsendable later (e.g. its target was deleted): fail it at once.
        await loseJobs(deps, eq(jobs.id, r.id), UNSENDABLE_REASON, deps.logger);
        continue;
      }
    }
    out.push({
      v: PROTOCOL_VERSION,
      type: "job",
      jobId: r.id,
      kind: r.kind,
      ...(r.projectRef ? { ref: r.projectRef } : {}),
      params,
    });
  }
  return out;
}

async function settle(
  deps: AppDeps,
  where: ReturnType<typeof and>,
  patch: Partial<typeof jobs.$inferInsert>,
): Promise<JobRow[]> {
  return deps.database.db
    .update(jobs)
    .set({ ...patch, updatedAt: new Date(deps.clock.now()) })
    .where(where)
    .returning();
}

/**
 * Record an agent's `job_result` for a job of THIS host that is still running, then let the kind's
 * handler act on it. A result for another host's job, or a second result, changes nothing.
 * Returns false when the job is unknown to this host.
 */
export async function recordJobResult(deps: AppDeps, hostId: string, frame: JobResult, log: Logger): Promise<boolean> {
  const db = deps.database.db;
  const [row] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.id, frame.jobId), eq(jobs.hostId, hostId)))
    .limit(1);
  if (!row) return false;
  const [updated] = await settle(deps, and(eq(jobs.id, row.id), eq(jobs.status, "running")), {
    status: frame.ok ? "succeeded" : "failed",
    result: frame.ok ? (frame.result ?? null) : null,
    error: frame.ok ? null : (frame.error ?? "the agent reported a failure without a message"),
  });
  if (!updated) {
    log.debug("job result for a job that is not running", { jobId: row.id, status: row.status });
    return true;
  }
  await runHook(updated, log, (h) => h.onResult(deps, updated, frame));
  return true;
}

/** Fail jobs that can no longer answer (see JobKindHandler.onLost) and tell their kinds. */
export async function loseJobs(
  deps: AppDeps,
  where: ReturnType<typeof and>,
  reason: string,
  log: Logger,
): Promise<number> {
  const lost = await settle(deps, and(eq(jobs.status, "running"), where), {
    status: "failed",
    error: reason,
  });
  for (const job of lost) await runHook(job, log, (h) => h.onLost(deps, job, reason));
  return lost.length;
}

/**
 * The agent process on `hostId` changed: its running jobs died with the old process, except
 * those of kinds that survive a restart (they are delivered again and answered).
 */
export function loseJobsOfRestartedAgent(deps: AppDeps, hostId: string, log: Logger): Promise<number> {
  const surviving = [...handlers].filter(([, h]) => h.survivesAgentRestart).map(([kind]) => kind);
  return loseJobs(
    deps,
    surviving.length > 0 ? and(eq(jobs.hostId, hostId), notInArray(jobs.kind, surviving)) : eq(jobs.hostId, hostId),
    "the host agent restarted while the job was running",
    log,
  );
}

/** Fail running jobs whose lease has run out (called by the periodic sweep of each runtime). */
export function loseExpiredJobs(deps: AppDeps, log: Logger): Promise<number> {
  return loseJobs(
    deps,
    lt(jobs.leaseUntil, new Date(deps.clock.now())),
    "the job did not finish within its lease",
    log,
  );
}

async function runHook(job: JobRow, log: Logger, call: (h: JobKindHandler) => Promise<void>): Promise<void> {
  const handler = handlers.get(job.kind);
  if (!handler) return;
  try {
    await call(handler);
  } catch (err) {
    log.error("job handler failed", { jobId: job.id, kind: job.kind, err });
  }
}
