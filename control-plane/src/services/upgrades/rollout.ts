import { and, asc, desc, eq, gte, inArray, isNull, lt, ne, or } from "drizzle-orm";
import { organizations, projects, projectUpgrades, upgradeRolloutProjects, upgradeRollouts } from "../../db/schema.js";
import type { AppDeps, AuthedContext, RequestMeta } from "../../deps.js";
import { ApiError, badRequest, notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { targetForOrg } from "../backups/targets.js";
import { assertInstanceAdmin } from "../fleet/hosts.js";
import { checkEligibility } from "./eligibility.js";
import { type PlanItem, planRollout, type RolloutItemStatus, type RolloutStatus } from "./rollout-plan.js";
import { beginUpgrade } from "./upgrade.js";

/**
 * Fleet-wide upgrades (ADR 0039, docs/upgrades-api.md): the projects of an organization and/or a
 * region that run one release, moved to another by the same upgrade procedure a member starts,
 * a canary first, then `parallel` at a time, stopping at the first failure (rollout-plan.ts has
 * the rules). The rollout is rows, not a process: `advanceRollout` moves it on, from the request
 * that created it, from the end of one of its upgrades, and from every maintenance tick, on
 * whichever replica; a lease keeps two from advancing the same rollout at once.
 */

export type RolloutRow = typeof upgradeRollouts.$inferSelect;
export type RolloutItemRow = typeof upgradeRolloutProjects.$inferSelect;

export interface RolloutInput {
  fromRelease: string;
  toRelease: string;
  orgSlug?: string | undefined;
  region?: string | undefined;
  /** How many upgrades run at once after the canary. */
  parallel: number;
  allowWithoutBackup: boolean;
  /** The project to upgrade first (default: the oldest). */
  canaryRef?: string | undefined;
}

export interface RolloutItemView {
  ref: string;
  orgSlug: string | null;
  region: string;
  status: RolloutItemStatus;
  /** The first project whose upgrade started. */
  canary: boolean;
  upgradeId: number | null;
  error: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface RolloutView {
  id: number;
  fromRelease: string;
  toRelease: string;
  orgSlug: string | null;
  region: string | null;
  parallel: number;
  allowWithoutBackup: boolean;
  status: RolloutStatus;
  stopReason: string | null;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  counts: Record<RolloutItemStatus, number> & { total: number };
  projects: RolloutItemView[];
}

/** A replica advancing a rollout holds it this long; after a crash another takes over then. */
const LEASE_MS = 5 * 60_000;
const MAX_PARALLEL = 50;

function systemMeta(id: number): RequestMeta {
  return { requestId: `rollout-${id}`, ip: undefined, userAgent: undefined };
}

export function rolloutView(r: RolloutRow, items: readonly RolloutItemRow[]): RolloutView {
  const ordered = [...items].sort((a, b) => a.position - b.position);
  const canary = ordered.find((i) => i.upgradeId !== null);
  const counts = {
    total: ordered.length,
    PENDING: 0,
    STARTING: 0,
    RUNNING: 0,
    COMPLETED: 0,
    ROLLED_BACK: 0,
    FAILED: 0,
    SKIPPED: 0,
  };
  for (const i of ordered) counts[i.status]++;
  return {
    id: r.id,
    fromRelease: r.fromRelease,
    toRelease: r.toRelease,
    orgSlug: r.orgSlug,
    region: r.region,
    parallel: r.parallel,
    allowWithoutBackup: r.allowWithoutBackup,
    status: r.status,
    stopReason: r.stopReason,
    createdBy: r.createdByEmail,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    finishedAt: r.finishedAt,
    counts,
    projects: ordered.map((i) => ({
      ref: i.projectRef,
      orgSlug: i.orgSlug,
      region: i.region,
      status: i.status,
      canary: i === canary,
      upgradeId: i.upgradeId,
      error: i.error,
      startedAt: i.startedAt,
      finishedAt: i.finishedAt,
    })),
  };
}

/**
 * Start a rollout (instance admin). Refused up front (400) when the releases are unknown or the
 * target can hold no project of the source release (a downgrade, no database facts), when no
 * project matches, and when an organization involved has no backup storage and the operator did
 * not allow upgrades without a backup. A project that cannot be upgraded when its turn comes
 * (paused, too small, …) is skipped with the reason.
 */
export async function startRollout(ctx: AuthedContext, input: RolloutInput): Promise<RolloutView> {
  assertInstanceAdmin(ctx);
  const { deps } = ctx;
  if (!input.orgSlug && !input.region) throw badRequest("Name an organization (org_slug), a region, or both");
  if (input.parallel < 1 || input.parallel > MAX_PARALLEL) {
    throw badRequest(`parallel must be between 1 and ${MAX_PARALLEL}`);
  }
  const from = deps.releases.get(input.fromRelease);
  if (!from) {
    throw badRequest(`No release named ${input.fromRelease}; known: ${deps.releases.names().join(", ")}`);
  }
  // The releases' own verdict, on a project that would fit anywhere: refusals that no project of
  // the source release can escape.
  const verdict = checkEligibility(
    deps.releases,
    { ref: "(any project)", release: from.name, parts: null, computeSize: "xlarge", status: "ACTIVE_HEALTHY" },
    input.toRelease,
  );
  if (!verdict.ok && verdict.refusal.code !== "missing_parts") throw badRequest(verdict.refusal.message);

  let orgId: number | null = null;
  if (input.orgSlug) {
    const [org] = await ctx.db
      .select({ id: organizations.id })
      .from(organizations)
      .where(eq(organizations.slug, input.orgSlug))
      .limit(1);
    if (!org) throw notFound(`Organization ${input.orgSlug} not found`);
    orgId = org.id;
  }
  const conditions = [
    eq(projects.release, from.name),
    ne(projects.status, "REMOVED"),
    ne(projects.desiredState, "deleted"),
    ...(orgId !== null ? [eq(projects.orgId, orgId)] : []),
    ...(input.region ? [eq(projects.region, input.region)] : []),
  ];
  const found = await ctx.db
    .select({
      id: projects.id,
      ref: projects.ref,
      orgId: projects.orgId,
      orgSlug: organizations.slug,
      region: projects.region,
    })
    .from(projects)
    .innerJoin(organizations, eq(organizations.id, projects.orgId))
    .where(and(...conditions))
    .orderBy(asc(projects.createdAt), asc(projects.id));
  const scope = [input.orgSlug && `organization ${input.orgSlug}`, input.region && `region ${input.region}`]
    .filter(Boolean)
    .join(" in ");
  if (found.length === 0) throw badRequest(`No project of ${scope} runs release ${from.name}`);
  if (input.canaryRef) {
    const at = found.findIndex((p) => p.ref === input.canaryRef);
    if (at < 0) throw badRequest(`canary ${input.canaryRef} is not one of the projects of ${scope} on ${from.name}`);
    found.unshift(...found.splice(at, 1));
  }
  if (!input.allowWithoutBackup) {
    const orgs = [...new Map(found.map((p) => [p.orgId, p.orgSlug])).entries()];
    const without: string[] = [];
    for (const [id, slug] of orgs) if (!(await targetForOrg(ctx.db, id))) without.push(slug);
    if (without.length > 0) {
      throw badRequest(
        `Organization${without.length > 1 ? "s" : ""} ${without.join(", ")} ha${without.length > 1 ? "ve" : "s"} no backup storage, so ` +
          "their projects would be upgraded without a backup first: set one, or allow upgrades without a backup explicitly",
      );
    }
  }
  const now = new Date(deps.clock.now());
  const rollout = await ctx.db.transaction(async (tx) => {
    const [r] = await tx
      .insert(upgradeRollouts)
      .values({
        fromRelease: from.name,
        toRelease: input.toRelease,
        orgId,
        orgSlug: input.orgSlug ?? null,
        region: input.region ?? null,
        parallel: input.parallel,
        allowWithoutBackup: input.allowWithoutBackup,
        status: "RUNNING",
        createdBy: ctx.actor.userId,
        createdByEmail: ctx.actor.email,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    if (!r) throw new Error("rollout insert returned nothing");
    await tx.insert(upgradeRolloutProjects).values(
      found.map((p, position) => ({
        rolloutId: r.id,
        position,
        projectId: p.id,
        projectRef: p.ref,
        orgSlug: p.orgSlug,
        region: p.region,
        status: "PENDING" as const,
      })),
    );
    await recordAudit(tx, ctx.meta, {
      action: "fleet.upgrade",
      outcome: "success",
      actor: ctx.actor,
      orgId,
      target: input.toRelease,
      details: {
        rollout_id: r.id,
        from_release: from.name,
        to_release: input.toRelease,
        region: input.region ?? null,
        parallel: input.parallel,
        projects: found.length,
        allow_without_backup: input.allowWithoutBackup,
      },
    });
    return r;
  });
  await advanceRollout(deps, rollout.id);
  return rolloutById(deps, rollout.id);
}

async function rolloutById(deps: AppDeps, id: number): Promise<RolloutView> {
  const db = deps.database.db;
  const [r] = await db.select().from(upgradeRollouts).where(eq(upgradeRollouts.id, id)).limit(1);
  if (!r) throw notFound(`No fleet upgrade ${id}`);
  const items = await db.select().from(upgradeRolloutProjects).where(eq(upgradeRolloutProjects.rolloutId, id));
  return rolloutView(r, items);
}

/** One rollout with its report (instance admin). */
export async function getRollout(ctx: AuthedContext, id: number): Promise<RolloutView> {
  assertInstanceAdmin(ctx);
  return rolloutById(ctx.deps, id);
}

/** The most recent rollouts, newest first (instance admin). */
export async function listRollouts(ctx: AuthedContext, limit = 20): Promise<RolloutView[]> {
  assertInstanceAdmin(ctx);
  const rows = await ctx.db.select().from(upgradeRollouts).orderBy(desc(upgradeRollouts.id)).limit(limit);
  if (rows.length === 0) return [];
  const items = await ctx.db
    .select()
    .from(upgradeRolloutProjects)
    .where(
      inArray(
        upgradeRolloutProjects.rolloutId,
        rows.map((r) => r.id),
      ),
    );
  return rows.map((r) =>
    rolloutView(
      r,
      items.filter((i) => i.rolloutId === r.id),
    ),
  );
}

/**
 * Stop a rollout (instance admin): nothing new starts, what runs finishes, the rest is skipped.
 * Stopping a finished rollout is a 409.
 */
export async function stopRollout(ctx: AuthedContext, id: number): Promise<RolloutView> {
  assertInstanceAdmin(ctx);
  const now = new Date(ctx.deps.clock.now());
  const [stopped] = await ctx.db
    .update(upgradeRollouts)
    .set({ status: "STOPPING", stopReason: `stopped by ${ctx.actor.email}`, updatedAt: now })
    .where(and(eq(upgradeRollouts.id, id), eq(upgradeRollouts.status, "RUNNING")))
    .returning();
  if (!stopped) {
    const current = await rolloutById(ctx.deps, id);
    if (current.status !== "STOPPING") {
      throw new ApiError("conflict", `Fleet upgrade ${id} has already finished (${current.status})`);
    }
  } else {
    await recordAudit(ctx.db, ctx.meta, {
      action: "fleet.upgrade_stop",
      outcome: "success",
      actor: ctx.actor,
      orgId: stopped.orgId,
      target: stopped.toRelease,
      details: { rollout_id: id },
    });
  }
  await advanceRollout(ctx.deps, id);
  return rolloutById(ctx.deps, id);
}

/** Take the rollout for this replica, unless another holds it or it has finished. */
async function lease(deps: AppDeps, id: number): Promise<RolloutRow | null> {
  const now = new Date(deps.clock.now());
  const [r] = await deps.database.db
    .update(upgradeRollouts)
    .set({ leaseUntil: new Date(now.getTime() + LEASE_MS) })
    .where(
      and(
        eq(upgradeRollouts.id, id),
        inArray(upgradeRollouts.status, ["RUNNING", "STOPPING"]),
        or(isNull(upgradeRollouts.leaseUntil), lt(upgradeRollouts.leaseUntil, now)),
      ),
    )
    .returning();
  return r ?? null;
}

async function setItem(deps: AppDeps, id: number, values: Partial<RolloutItemRow>): Promise<void> {
  await deps.database.db.update(upgradeRolloutProjects).set(values).where(eq(upgradeRolloutProjects.id, id));
}

/**
 * Bring the items in line with their upgrades: a settled upgrade settles its item; an item
 * STARTING (a replica died while starting it) adopts the upgrade it started, or goes back to
 * PENDING when none was.
 */
async function syncItems(deps: AppDeps, r: RolloutRow, items: RolloutItemRow[]): Promise<void> {
  const db = deps.database.db;
  const now = new Date(deps.clock.now());
  const running = items.filter((i) => i.status === "RUNNING" && i.upgradeId !== null);
  if (running.length > 0) {
    const ups = await db
      .select({ id: projectUpgrades.id, status: projectUpgrades.status, error: projectUpgrades.error })
      .from(projectUpgrades)
      .where(
        inArray(
          projectUpgrades.id,
          running.map((i) => i.upgradeId as number),
        ),
      );
    for (const i of running) {
      const u = ups.find((x) => x.id === i.upgradeId);
      if (u && u.status === "RUNNING") continue;
      const values = u
        ? { status: u.status, error: u.error, finishedAt: now }
        : {
            status: "FAILED" as const,
            error: "its upgrade record is gone (the project was deleted?)",
            finishedAt: now,
          };
      await setItem(deps, i.id, values);
      Object.assign(i, values);
    }
  }
  for (const i of items.filter((x) => x.status === "STARTING")) {
    const [u] =
      i.projectId !== null && i.startedAt !== null
        ? await db
            .select({ id: projectUpgrades.id })
            .from(projectUpgrades)
            .where(
              and(
                eq(projectUpgrades.projectId, i.projectId),
                eq(projectUpgrades.toRelease, r.toRelease),
                gte(projectUpgrades.createdAt, i.startedAt),
              ),
            )
            .orderBy(desc(projectUpgrades.id))
            .limit(1)
        : [];
    const values = u
      ? { status: "RUNNING" as const, upgradeId: u.id }
      : { status: "PENDING" as const, startedAt: null };
    await setItem(deps, i.id, values);
    Object.assign(i, values);
  }
}

/** Start one project's upgrade; false when it did not start for a reason worth retrying later. */
async function startItem(deps: AppDeps, r: RolloutRow, i: RolloutItemRow): Promise<"started" | "skipped" | "retry"> {
  const db = deps.database.db;
  const now = new Date(deps.clock.now());
  await setItem(deps, i.id, { status: "STARTING", startedAt: now });
  const [p] = i.projectId !== null ? await db.select().from(projects).where(eq(projects.id, i.projectId)).limit(1) : [];
  const skip = async (why: string) => {
    await setItem(deps, i.id, { status: "SKIPPED", error: why, finishedAt: now });
    return "skipped" as const;
  };
  if (!p || p.status === "REMOVED" || p.desiredState === "deleted") return skip("the project was deleted");
  if (p.release !== r.fromRelease) return skip(`the project runs release ${p.release} now, not ${r.fromRelease}`);
  try {
    const u = await beginUpgrade({
      deps,
      db,
      meta: systemMeta(r.id),
      actor: r.createdBy ? { userId: r.createdBy, email: r.createdByEmail ?? "" } : null,
      project: p,
      targetRelease: r.toRelease,
      allowWithoutBackup: r.allowWithoutBackup,
    });
    await setItem(deps, i.id, { status: "RUNNING", upgradeId: u.id });
    return "started";
  } catch (err) {
    // A refusal (the project's state, its size, its parts, no backup storage) skips the project;
    // anything else (the database) leaves it for the next attempt.
    if (err instanceof ApiError && err.status < 500) return skip(err.message);
    await setItem(deps, i.id, { status: "PENDING", startedAt: null });
    deps.logger.warn("fleet upgrade could not start a project", { rolloutId: r.id, ref: i.projectRef, err });
    return "retry";
  }
}

/**
 * Move rollout `id` on: settle items whose upgrades ended, stop after a failure, start what the
 * plan allows, finish when nothing is left. Returns whether this replica advanced it (false when
 * another holds it or it has finished).
 */
export async function advanceRollout(deps: AppDeps, id: number): Promise<boolean> {
  const r = await lease(deps, id);
  if (!r) return false;
  const db = deps.database.db;
  try {
    // Starting may end a project at once (refused) and change the plan: plan again until stable.
    for (let round = 0; round < 1000; round++) {
      // Read each round: an operator's stop lands between rounds.
      const [cur] = await db
        .select({ status: upgradeRollouts.status, stopReason: upgradeRollouts.stopReason })
        .from(upgradeRollouts)
        .where(eq(upgradeRollouts.id, id))
        .limit(1);
      if (!cur) return true;
      let status: RolloutStatus = cur.status;
      let stopReason = cur.stopReason;
      const items = await db.select().from(upgradeRolloutProjects).where(eq(upgradeRolloutProjects.rolloutId, id));
      await syncItems(deps, r, items);
      const plan = planRollout(status, r.parallel, items as PlanItem[]);
      const now = new Date(deps.clock.now());
      if (plan.skip.length > 0) {
        await db
          .update(upgradeRolloutProjects)
          .set({
            status: "SKIPPED",
            error: `not started: the fleet upgrade stopped (${plan.stopReason ?? stopReason ?? "stopped"})`,
            finishedAt: now,
          })
          .where(and(inArray(upgradeRolloutProjects.id, plan.skip), eq(upgradeRolloutProjects.status, "PENDING")));
      }
      if (plan.status !== status || plan.stopReason) {
        status = plan.status;
        stopReason = plan.stopReason ?? stopReason;
        const finished = status === "COMPLETED" || status === "STOPPED";
        await db
          .update(upgradeRollouts)
          .set({ status, stopReason, updatedAt: now, ...(finished ? { finishedAt: now } : {}) })
          .where(and(eq(upgradeRollouts.id, id), eq(upgradeRollouts.status, cur.status)));
        if (finished) {
          deps.logger.info("fleet upgrade finished", { rolloutId: id, status, stopReason });
          return true;
        }
      }
      let capacity = plan.capacity;
      let changed = false;
      for (const itemId of plan.candidates) {
        if (capacity === 0) break;
        const item = items.find((i) => i.id === itemId) as RolloutItemRow;
        const outcome = await startItem(deps, r, item);
        if (outcome === "retry") return true;
        changed = true;
        if (outcome === "started") capacity--;
      }
      if (!changed) return true;
    }
    return true;
  } finally {
    await db.update(upgradeRollouts).set({ leaseUntil: null }).where(eq(upgradeRollouts.id, id));
  }
}

/** Every unfinished rollout, advanced (the maintenance tick; safe on several replicas). */
export async function advanceRollouts(deps: AppDeps): Promise<number> {
  const open = await deps.database.db
    .select({ id: upgradeRollouts.id })
    .from(upgradeRollouts)
    .where(inArray(upgradeRollouts.status, ["RUNNING", "STOPPING"]))
    .orderBy(asc(upgradeRollouts.id))
    .limit(20);
  let moved = 0;
  for (const r of open) if (await advanceRollout(deps, r.id)) moved++;
  return moved;
}

/** The rollout an upgrade belongs to, advanced when that upgrade settles (no wait for the tick). */
export async function advanceRolloutOfUpgrade(deps: AppDeps, upgradeId: number): Promise<void> {
  const [i] = await deps.database.db
    .select({ rolloutId: upgradeRolloutProjects.rolloutId })
    .from(upgradeRolloutProjects)
    .where(eq(upgradeRolloutProjects.upgradeId, upgradeId))
    .limit(1);
  if (i) await advanceRollout(deps, i.rolloutId);
}
