import {
  type JobResult,
  type ProjectStatus,
  UPGRADE_JOB_KIND,
  UpgradeJobParams,
  UpgradeJobResult,
  UpgradeStep,
} from "@supamanager/shared";
import { and, desc, eq, inArray } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { backups, hosts, jobs, projects, projectUpgrades } from "../../db/schema.js";
import type { Actor, AppDeps, AuthedContext, RequestMeta } from "../../deps.js";
import { badRequest, conflict } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { releasePorts } from "../../releases/render.js";
import { recordAudit } from "../audit/record.js";
import { beginBackup } from "../backups/backups.js";
import { targetForOrg } from "../backups/targets.js";
import { buildApply, requiredServicesOf } from "../fleet/reconcile.js";
import { keepOnlyPorts, projectPorts, reservePorts } from "../fleet/scheduling.js";
import { enqueueJob, type JobKindHandler, type JobRow, UNSENDABLE_REASON } from "../jobs/jobs.js";
import { projectForMember } from "../organizations/access.js";
import { hostFactsFor } from "../projects/host-facts.js";
import { isComputeSize, type ProjectRow } from "../projects/model.js";
import { checkEligibility, refusalError } from "./eligibility.js";

/**
 * Upgrading a project to another release (docs/upgrades.md, ADR 0037), control-plane side.
 *
 * `startUpgrade` / `beginUpgrade` check eligibility (eligibility.ts), start a backup with the
 * backup machinery (refused without a backup target unless `allowWithoutBackup`), put the project
 * in UPGRADING and record a `project_upgrades` row holding the project (`projects.upgrade_id`):
 * while it is set the control plane sends the project no apply and health reports and applies
 * leave its status alone (fleet/reconcile.ts), so nothing fights the agent's job. When the
 * backup completes (advanceUpgrade, also run by the maintenance tick) the `upgrade` job is
 * queued; the agent runs it (host-agent/src/upgrades) and answers `upgraded` or `rolled_back`.
 *
 * How an upgrade ends (UpgradeView.status):
 * - COMPLETED: the project runs the target release (projects.release changed, a new spec
 *   version applied), ACTIVE_HEALTHY;
 * - ROLLED_BACK: something failed (the backup, the data step, the new stack's health, the post
 *   check, …); the project runs its old release on its old data, ACTIVE_HEALTHY, and its
 *   status_reason says what failed. Also when nothing had been changed yet;
 * - FAILED: the agent could not bring the old release back, or never answered (host removed,
 *   lease expired): ACTIVE_UNHEALTHY with a status_reason naming the backup to restore.
 * A restart of the agent does NOT end the upgrade: the agent's journal rolls it back or finishes
 * it, and the job (`survivesAgentRestart`) is delivered again to collect the answer.
 */

export type UpgradeStatus = "RUNNING" | "COMPLETED" | "ROLLED_BACK" | "FAILED";

/**
 * One upgrade as the API shows it.
 * - `step`: where the procedure is (or stopped): backing_up → waiting_for_agent →
 *   recording_facts → stopping → copying_data → migrating_data → starting → health_check →
 *   post_check → done; `rolling_back` while a failure is undone (then `done` too). For a
 *   ROLLED_BACK or FAILED upgrade, `failedStep` is the step that failed.
 * - `backupId`: the backup taken first (backups.id; null when allowed without one).
 * - `error`: why it did not complete (null while RUNNING and when COMPLETED).
 */
export interface UpgradeView {
  id: number;
  ref: string;
  fromRelease: string;
  toRelease: string;
  status: UpgradeStatus;
  step: UpgradeStep;
  failedStep: UpgradeStep | null;
  error: string | null;
  backupId: number | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface UpgradeRequest {
  targetRelease: string;
  /** Start without a backup when the organization has no backup target (the operator's risk). */
  allowWithoutBackup?: boolean;
}

export type UpgradeRow = typeof projectUpgrades.$inferSelect;

/** The job may run this long from delivery (a 1 GB dump/restore takes minutes, not hours). */
export const UPGRADE_LEASE_MS = 3 * 60 * 60 * 1000;
/** How long the new release's stack may take to become healthy before the agent rolls back. */
export const UPGRADE_HEALTH_TIMEOUT_SECONDS = 600;

const SYSTEM_META: RequestMeta = { requestId: "upgrade", ip: undefined, userAgent: undefined };

export function upgradeView(row: UpgradeRow): UpgradeView {
  const report = (row.report ?? {}) as { failedStep?: unknown };
  const failed = UpgradeStep.safeParse(report.failedStep);
  const step = UpgradeStep.safeParse(row.step);
  return {
    id: row.id,
    ref: row.projectRef,
    fromRelease: row.fromRelease,
    toRelease: row.toRelease,
    status: row.status,
    step: step.success ? step.data : "done",
    failedStep: failed.success ? failed.data : null,
    error: row.error,
    backupId: row.backupId,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** The project's most recent upgrade (running or not), or null when it never had one. */
export async function latestUpgrade(deps: AppDeps, projectId: number): Promise<UpgradeView | null> {
  const [row] = await deps.database.db
    .select()
    .from(projectUpgrades)
    .where(eq(projectUpgrades.projectId, projectId))
    .orderBy(desc(projectUpgrades.createdAt), desc(projectUpgrades.id))
    .limit(1);
  return row ? upgradeView(row) : null;
}

/**
 * POST …/upgrade as a member: owners and administrators (projects.lifecycle), then beginUpgrade.
 * Errors: 404 unknown project, 403 role, 400 target refused or no backup target, 409 state.
 */
export async function startUpgrade(ctx: AuthedContext, ref: string, req: UpgradeRequest): Promise<UpgradeView> {
  const { project } = await projectForMember(ctx, ref, "projects.lifecycle");
  return beginUpgrade({ deps: ctx.deps, db: ctx.db, meta: ctx.meta, actor: ctx.actor, project, ...req });
}

export interface UpgradeStart extends UpgradeRequest {
  deps: AppDeps;
  db: Executor;
  meta: RequestMeta;
  /** Who asked (audit); null for the system. Role checks are the caller's (startUpgrade does them). */
  actor: Pick<Actor, "userId" | "email"> | null;
  project: ProjectRow;
}

/**
 * Start an upgrade of `project` (already authorized): eligibility, backup, UPGRADING, the row.
 * The fleet rollout calls this per project with its own actor.
 */
export async function beginUpgrade(s: UpgradeStart): Promise<UpgradeView> {
  const { deps, project } = s;
  const facts = await hostFactsFor({ db: s.db as never, deps, meta: s.meta }, project);
  const verdict = checkEligibility(
    deps.releases,
    {
      ref: project.ref,
      release: project.release,
      parts: project.parts,
      computeSize: isComputeSize(project.computeSize) ? project.computeSize : "nano",
      status: project.status as ProjectStatus,
      desiredState: project.desiredState,
      hostOnline: facts?.online ?? false,
    },
    s.targetRelease,
  );
  if (!verdict.ok) throw refusalError(verdict.refusal);
  if (!project.hostId) throw conflict(`Project ${project.ref} is not placed on a host`);
  if (project.restoreJobId || project.upgradeId) {
    throw conflict(`Project ${project.ref} is busy with a restore or an upgrade; try again when it has finished`);
  }
  const target = await targetForOrg(s.db, project.orgId);
  if (!target && !s.allowWithoutBackup) {
    throw badRequest(
      `Project ${project.ref} would be upgraded without a backup: its organization has no backup storage. ` +
        "Set one (/platform/organizations/{slug}/backup-targets) or allow the upgrade without a backup explicitly",
    );
  }
  // The backup starts first, while the project still serves (backups need a serving status). If
  // the upgrade then cannot start, it is simply a backup.
  const backup = target
    ? await beginBackup({ deps, db: s.db, meta: s.meta, actor: s.actor, project, trigger: "manual" })
    : null;
  const now = new Date(deps.clock.now());
  const { row, kick } = await s.db.transaction(async (tx) => {
    const [p] = await tx.select().from(projects).where(eq(projects.id, project.id)).for("update");
    if (p?.status !== "ACTIVE_HEALTHY" || p.desiredState !== "running" || p.restoreJobId || p.upgradeId) {
      throw conflict(`Project ${project.ref} changed state meanwhile (${p?.status ?? "deleted"}); try again`);
    }
    const [created] = await tx
      .insert(projectUpgrades)
      .values({
        projectId: p.id,
        projectRef: p.ref,
        orgId: p.orgId,
        fromRelease: p.release,
        toRelease: s.targetRelease,
        status: "RUNNING",
        step: backup ? "backing_up" : "waiting_for_agent",
        backupId: backup?.id ?? null,
        createdBy: s.actor?.userId ?? null,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    if (!created) throw new Error("upgrade insert returned nothing");
    await tx
      .update(projects)
      .set({ status: "UPGRADING", statusReason: null, upgradeId: created.id, updatedAt: now })
      .where(eq(projects.id, p.id));
    await recordAudit(tx, s.meta, {
      action: "project.upgrade",
      outcome: "success",
      actor: s.actor,
      orgId: p.orgId,
      projectRef: p.ref,
      target: s.targetRelease,
      details: {
        upgrade_id: created.id,
        from_release: p.release,
        to_release: s.targetRelease,
        backup_id: backup?.id ?? null,
        without_backup: backup === null,
      },
    });
    const queued = backup ? created : await queueUpgradeJob(deps, tx, created, p, now);
    return { row: queued, kick: backup ? null : p.hostId };
  });
  if (kick) await deps.hub.kick(kick);
  return upgradeView(row);
}

/** Reserve ports the target release names and the project lacks, queue the job, step waiting_for_agent. */
async function queueUpgradeJob(
  deps: AppDeps,
  tx: Executor,
  u: UpgradeRow,
  p: ProjectRow,
  now: Date,
): Promise<UpgradeRow> {
  if (!p.hostId) throw new Error(`project ${p.ref} has no host`);
  const targetRelease = deps.releases.get(u.toRelease);
  if (targetRelease) {
    const have = await projectPorts(tx, p.ref);
    const missing = releasePorts(targetRelease).filter((w) => have[w.name] === undefined);
    if (missing.length > 0) await reservePorts(tx, deps, p.hostId, p.ref, missing);
  }
  const job = await enqueueJob(tx, now, {
    hostId: p.hostId,
    kind: UPGRADE_JOB_KIND,
    projectRef: p.ref,
    params: { upgradeId: String(u.id) },
    idempotencyKey: `upgrade:${u.id}`,
    leaseMs: UPGRADE_LEASE_MS,
  });
  const [row] = await tx
    .update(projectUpgrades)
    .set({ jobId: job.id, step: "waiting_for_agent", updatedAt: now })
    .where(eq(projectUpgrades.id, u.id))
    .returning();
  return row as UpgradeRow;
}

/**
 * Move an upgrade on from `backing_up` once its backup has settled: COMPLETED → queue the job;
 * FAILED (or gone) → ROLLED_BACK with nothing changed. Idempotent; returns whether it moved.
 */
export async function advanceUpgrade(deps: AppDeps, upgradeId: number): Promise<boolean> {
  const db = deps.database.db;
  const now = new Date(deps.clock.now());
  const outcome = await db.transaction(async (tx) => {
    const [u] = await tx.select().from(projectUpgrades).where(eq(projectUpgrades.id, upgradeId)).for("update");
    if (u?.status !== "RUNNING" || u.step !== "backing_up") return null;
    const [b] = u.backupId ? await tx.select().from(backups).where(eq(backups.id, u.backupId)).limit(1) : [];
    if (b && (b.status === "PENDING" || b.status === "RUNNING")) return null;
    const [p] = await tx.select().from(projects).where(eq(projects.id, u.projectId)).for("update");
    if (b?.status === "COMPLETED" && p && p.upgradeId === u.id && p.desiredState === "running" && p.hostId) {
      await queueUpgradeJob(deps, tx, u, p, now);
      return { kick: p.hostId };
    }
    const why =
      b?.status !== "COMPLETED"
        ? `the backup taken first did not complete (${b?.error ?? `backup ${u.backupId ?? "?"} is gone`})`
        : "the project was deleted or changed meanwhile";
    await endUpgrade(tx, u, {
      status: "ROLLED_BACK",
      error: `The upgrade did not start: ${why}. Nothing was changed.`,
      failedStep: "backing_up",
      now,
    });
    return { kick: p?.hostId ?? null, ended: true };
  });
  if (outcome?.kick) await deps.hub.kick(outcome.kick);
  if (outcome && "ended" in outcome) await tellUpgradeSettled(deps, upgradeId);
  return outcome !== null;
}

/** Upgrades waiting for their backup: moved on by the maintenance tick (backups may settle anywhere). */
export async function advanceUpgrades(deps: AppDeps): Promise<number> {
  const waiting = await deps.database.db
    .select({ id: projectUpgrades.id })
    .from(projectUpgrades)
    .where(and(eq(projectUpgrades.status, "RUNNING"), eq(projectUpgrades.step, "backing_up")))
    .limit(50);
  let moved = 0;
  for (const w of waiting) if (await advanceUpgrade(deps, w.id)) moved++;
  return moved;
}

/** The upgrade waiting on backup `backupId`, if any: advanced as soon as the backup settles. */
export async function advanceUpgradeOfBackup(deps: AppDeps, backupId: number): Promise<void> {
  const [u] = await deps.database.db
    .select({ id: projectUpgrades.id })
    .from(projectUpgrades)
    .where(and(eq(projectUpgrades.backupId, backupId), eq(projectUpgrades.status, "RUNNING")))
    .limit(1);
  if (u) await advanceUpgrade(deps, u.id);
}

interface Ending {
  status: Exclude<UpgradeStatus, "RUNNING">;
  error: string | null;
  failedStep?: UpgradeStep | undefined;
  report?: Record<string, unknown>;
  /** COMPLETED: the target release's port names; the project's other ports are given back. */
  targetPorts?: readonly string[] | undefined;
  now: Date;
}

/**
 * Settle the upgrade row and release the project (only while this upgrade still holds it: a
 * deletion meanwhile keeps its own status, and the hold is dropped either way).
 */
async function endUpgrade(tx: Executor, u: UpgradeRow, e: Ending): Promise<boolean> {
  const [settled] = await tx
    .update(projectUpgrades)
    .set({
      status: e.status,
      step: "done",
      error: e.error?.slice(0, 4000) ?? null,
      report: { ...(e.report ?? {}), ...(e.failedStep ? { failedStep: e.failedStep } : {}) },
      updatedAt: e.now,
    })
    .where(and(eq(projectUpgrades.id, u.id), eq(projectUpgrades.status, "RUNNING")))
    .returning({ id: projectUpgrades.id });
  if (!settled) return false;
  const held = and(eq(projects.id, u.projectId), eq(projects.upgradeId, u.id));
  if (e.status === "COMPLETED") {
    // The agent already runs the target; the new spec version makes every later apply render it.
    const [p] = await tx.select().from(projects).where(held).limit(1);
    if (p) {
      await tx
        .update(projects)
        .set({
          release: u.toRelease,
          specVersion: p.specVersion + 1,
          upgradeId: null,
          ...(p.status === "UPGRADING" ? { status: "ACTIVE_HEALTHY", statusReason: null } : {}),
          updatedAt: e.now,
        })
        .where(held);
      if (e.targetPorts) await keepOnlyPorts(tx, p.ref, e.targetPorts);
    }
  } else {
    const reason =
      e.status === "ROLLED_BACK"
        ? `Upgrade to ${u.toRelease} failed${e.failedStep ? ` (${e.failedStep.replace(/_/g, " ")})` : ""}: ${sentence(e.error)} The project runs release ${u.fromRelease} with the data it had before the upgrade.`
        : `Upgrade to ${u.toRelease} failed and the project could not be verified on release ${u.fromRelease}: ${sentence(e.error)} ${u.backupId ? `Backup ${u.backupId} holds the data from before the upgrade; restore it if the data is not right.` : "No backup was taken before the upgrade."}`;
    const status: ProjectStatus = e.status === "ROLLED_BACK" ? "ACTIVE_HEALTHY" : "ACTIVE_UNHEALTHY";
    await tx
      .update(projects)
      .set({ status, statusReason: reason.slice(0, 2000), upgradeId: null, updatedAt: e.now })
      .where(and(held, eq(projects.status, "UPGRADING")));
  }
  await tx.update(projects).set({ upgradeId: null }).where(held);
  await recordAudit(tx, SYSTEM_META, {
    action: "project.upgrade_finished",
    outcome: e.status === "COMPLETED" ? "success" : "failure",
    actor: null,
    orgId: u.orgId,
    projectRef: u.projectRef,
    target: u.toRelease,
    details: {
      upgrade_id: u.id,
      status: e.status,
      from_release: u.fromRelease,
      to_release: u.toRelease,
      ...(e.failedStep ? { failed_step: e.failedStep } : {}),
    },
  });
  return true;
}

/** An agent's message as a sentence: trimmed, ending with a full stop. */
function sentence(text: string | null | undefined): string {
  const t = (text ?? "").trim() || "no reason given";
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

async function upgradeOfJob(db: Executor, jobId: string): Promise<UpgradeRow | null> {
  const [row] = await db.select().from(projectUpgrades).where(eq(projectUpgrades.jobId, jobId)).limit(1);
  return row ?? null;
}

/** Called once an upgrade has ended (any outcome), e.g. to move a fleet rollout on (rollout.ts). */
export type UpgradeSettled = (deps: AppDeps, upgradeId: number) => Promise<void>;
const settledListeners: UpgradeSettled[] = [];

export function onUpgradeSettled(fn: UpgradeSettled): void {
  settledListeners.push(fn);
}

async function tellUpgradeSettled(deps: AppDeps, upgradeId: number): Promise<void> {
  for (const fn of settledListeners) {
    try {
      await fn(deps, upgradeId);
    } catch (err) {
      deps.logger.error("an upgrade-settled listener failed", { upgradeId, err });
    }
  }
}

async function finish(deps: AppDeps, job: JobRow, e: Omit<Ending, "now">, log: Logger): Promise<void> {
  const u = await upgradeOfJob(deps.database.db, job.id);
  if (!u) return;
  const now = new Date(deps.clock.now());
  const target = e.status === "COMPLETED" ? deps.releases.get(u.toRelease) : undefined;
  const targetPorts = target ? releasePorts(target).map((w) => w.name) : undefined;
  const ended = await deps.database.db.transaction(async (tx) => endUpgrade(tx, u, { ...e, targetPorts, now }));
  if (!ended) return;
  const [p] = await deps.database.db
    .select({ hostId: projects.hostId })
    .from(projects)
    .where(eq(projects.id, u.projectId))
    .limit(1);
  // What was held (a new spec, a deletion) goes out now.
  if (p?.hostId) await deps.hub.kick(p.hostId);
  const fields = { upgradeId: u.id, ref: u.projectRef, from: u.fromRelease, to: u.toRelease };
  if (e.status === "COMPLETED") log.info("upgrade completed", fields);
  else log.warn("upgrade did not complete", { ...fields, status: e.status, error: e.error?.slice(0, 500) });
  await tellUpgradeSettled(deps, u.id);
}

/** Builds the job's params at delivery: the target's stack carries secrets, so it is never stored. */
async function deliverUpgrade(deps: AppDeps, job: JobRow): Promise<Record<string, unknown>> {
  const db = deps.database.db;
  const upgradeId = Number((job.params as { upgradeId?: unknown }).upgradeId);
  const [u] = await db.select().from(projectUpgrades).where(eq(projectUpgrades.id, upgradeId)).limit(1);
  if (!u) throw new Error(`upgrade ${upgradeId} of job ${job.id} is gone`);
  const [p] = await db.select().from(projects).where(eq(projects.id, u.projectId)).limit(1);
  if (!p?.hostId) throw new Error(`the project of upgrade ${u.id} is gone`);
  const [host] = await db
    .select({ bindAddress: hosts.bindAddress, reachability: hosts.reachability })
    .from(hosts)
    .where(eq(hosts.id, p.hostId))
    .limit(1);
  if (!host) throw new Error(`the host of upgrade ${u.id} is gone`);
  const from = deps.releases.get(u.fromRelease);
  const to = deps.releases.get(u.toRelease);
  if (!from?.database || !to?.database) throw new Error(`release ${u.fromRelease} or ${u.toRelease} is not known`);
  const dump = [to, from]
    .flatMap((r) => r.backup?.artifacts ?? [])
    .map((a) => a.source)
    .find((src) => src.kind === "pg_dump" && src.service === to.database?.service);
  const apply = await buildApply(deps, db, { ...p, release: u.toRelease, desiredState: "running" }, host);
  if (!apply.stack) throw new Error("the target stack did not render");
  return UpgradeJobParams.parse({
    upgradeId: String(u.id),
    fromRelease: u.fromRelease,
    toRelease: u.toRelease,
    stack: apply.stack,
    fromRequiredServices: requiredServicesOf(deps, u.fromRelease, p.parts),
    database: {
      service: to.database.service,
      volume: to.database.volume,
      user: dump?.kind === "pg_dump" ? dump.user : "postgres",
      database: dump?.kind === "pg_dump" ? dump.database : "postgres",
      fromMajor: from.database.postgresMajor,
      toMajor: to.database.postgresMajor,
    },
    healthTimeoutSeconds: UPGRADE_HEALTH_TIMEOUT_SECONDS,
  });
}

/** The agent's progress report (POST /agent/v1/jobs/{jobId}/progress): only for its own running job. */
export async function recordUpgradeProgress(
  deps: AppDeps,
  hostId: string,
  jobId: string,
  step: UpgradeStep,
): Promise<boolean> {
  const db = deps.database.db;
  const [job] = await db
    .select({ id: jobs.id })
    .from(jobs)
    .where(and(eq(jobs.id, jobId), eq(jobs.hostId, hostId), eq(jobs.kind, UPGRADE_JOB_KIND)))
    .limit(1);
  if (!job) return false;
  await db
    .update(projectUpgrades)
    .set({ step, updatedAt: new Date(deps.clock.now()) })
    .where(
      and(
        eq(projectUpgrades.jobId, jobId),
        eq(projectUpgrades.status, "RUNNING"),
        inArray(projectUpgrades.step, [...AGENT_STEPS]),
      ),
    );
  return true;
}

/** Steps the agent reports (the control plane's own are backing_up and done). */
const AGENT_STEPS = [
  "waiting_for_agent",
  "recording_facts",
  "stopping",
  "copying_data",
  "migrating_data",
  "starting",
  "health_check",
  "post_check",
  "rolling_back",
] as const;

export const upgradeJobHandler: JobKindHandler = {
  deliver: deliverUpgrade,
  // The agent's journal finishes or rolls back an upgrade its restart interrupted; the job is
  // delivered again and answered from the journal (host-agent/src/upgrades/journal.ts).
  survivesAgentRestart: true,
  async onResult(deps: AppDeps, job: JobRow, result: JobResult): Promise<void> {
    const log = deps.logger.child({ jobId: job.id });
    if (!result.ok) {
      await finish(deps, job, { status: "FAILED", error: result.error ?? "the agent gave no reason" }, log);
      return;
    }
    const parsed = UpgradeJobResult.safeParse(result.result ?? {});
    if (!parsed.success) {
      await finish(deps, job, { status: "FAILED", error: "the agent's upgrade result was malformed" }, log);
      return;
    }
    const r = parsed.data;
    const report = { before: r.before, after: r.after, timings: r.timings };
    if (r.outcome === "upgraded") await finish(deps, job, { status: "COMPLETED", error: null, report }, log);
    else {
      await finish(deps, job, { status: "ROLLED_BACK", error: r.error ?? null, failedStep: r.failedStep, report }, log);
    }
  },
  async onLost(deps: AppDeps, job: JobRow, reason: string): Promise<void> {
    const log = deps.logger.child({ jobId: job.id });
    // Never sent: nothing on the host changed.
    if (reason === UNSENDABLE_REASON) {
      await finish(
        deps,
        job,
        { status: "ROLLED_BACK", error: `${reason}; nothing was changed`, failedStep: "waiting_for_agent" },
        log,
      );
      return;
    }
    await finish(deps, job, { status: "FAILED", error: reason }, log);
  },
};
