import { z } from "zod";
import { Stack } from "./frames.js";

/**
 * The `upgrade` job: the host agent moves one project from the release it runs to another
 * (docs/upgrades.md, ADR 0037). The control plane has taken a backup first; the agent records
 * facts about the database, stops the stack, keeps a copy of the data volume, moves the data
 * when the PostgreSQL major changes, starts the target release's stack, waits for it to be
 * healthy and checks the facts again. Any failure rolls back to the old stack files and the
 * copied data. The agent keeps a journal on disk, so a restart mid-way rolls back (or, once the
 * new release was verified, reports it upgraded) instead of leaving a half-upgraded project.
 */
export const UPGRADE_JOB_KIND = "upgrade";

/** The steps of an upgrade, in order; `rolling_back` replaces the rest after a failure. */
export const UPGRADE_STEPS = [
  "backing_up",
  "waiting_for_agent",
  "recording_facts",
  "stopping",
  "copying_data",
  "migrating_data",
  "starting",
  "health_check",
  "post_check",
  "rolling_back",
  "done",
] as const;
export const UpgradeStep = z.enum(UPGRADE_STEPS);
export type UpgradeStep = z.infer<typeof UpgradeStep>;

const ServiceName = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/);
const SqlName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "a lowercase SQL identifier");
const ReleaseName = z.string().min(1).max(64);

/** `job.params` of an `upgrade` job (built at delivery: the stack carries the project's secrets). */
export const UpgradeJobParams = z.object({
  upgradeId: z.string().min(1).max(64),
  fromRelease: ReleaseName,
  toRelease: ReleaseName,
  /** The target release's stack, rendered for this project (same secrets, same ports). */
  stack: Stack,
  /** The services of the release it runs now that must be healthy again after a rollback. */
  fromRequiredServices: z.array(ServiceName).max(64),
  database: z.object({
    /** The Compose service running PostgreSQL, in both releases. */
    service: ServiceName,
    /** The release's volume name (rendered as `<ref>_<volume>`) holding the data directory. */
    volume: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/),
    /** The superuser and database the checks connect as (over the container's local socket). */
    user: SqlName,
    database: SqlName,
    fromMajor: z.number().int().min(9).max(99),
    toMajor: z.number().int().min(9).max(99),
  }),
  /** How long the new stack may take to become healthy before the upgrade rolls back. */
  healthTimeoutSeconds: z.number().int().min(5).max(3600),
});
export type UpgradeJobParams = z.infer<typeof UpgradeJobParams>;

/** What the agent knows of a database before and after (docs/upgrades.md, "The checks"). */
export const DatabaseFacts = z.object({
  /** Exact row count of every table outside the system schemas, by `schema.table`. */
  tables: z.record(z.string().max(200), z.number().int().nonnegative()),
  extensions: z.array(z.string().max(200)).max(1000),
  /** `schema.view` outside the system schemas. */
  views: z.array(z.string().max(200)).max(20_000),
  /** `schema.function(argument types)` outside the system schemas, not an extension's. */
  functions: z.array(z.string().max(1000)).max(20_000),
});
export type DatabaseFacts = z.infer<typeof DatabaseFacts>;

/**
 * The job's result when the project ended on a release it was verified on: `upgraded` (the
 * target) or `rolled_back` (the old release and the old data; `error` says why). A rollback that
 * itself fails is a failed job (`ok: false`): the agent could not bring the old release back.
 */
export const UpgradeJobResult = z.object({
  outcome: z.enum(["upgraded", "rolled_back"]),
  /** The step that failed (rolled_back only). */
  failedStep: UpgradeStep.optional(),
  error: z.string().max(4000).optional(),
  before: DatabaseFacts.nullable().default(null),
  after: DatabaseFacts.nullable().default(null),
  /** Milliseconds each step took, in the order they ran. */
  timings: z
    .array(z.object({ step: UpgradeStep, ms: z.number().int().nonnegative() }))
    .max(64)
    .default([]),
});
export type UpgradeJobResult = z.infer<typeof UpgradeJobResult>;

/** `POST /agent/v1/jobs/{jobId}/progress`: the step a running upgrade job has reached. */
export const JobProgress = z.object({ step: UpgradeStep });
export type JobProgress = z.infer<typeof JobProgress>;
