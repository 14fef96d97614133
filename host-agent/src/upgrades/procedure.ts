import { cp, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  type DatabaseFacts,
  type Job,
  UpgradeJobParams,
  type UpgradeJobResult,
  type UpgradeStep,
} from "@supamanager/shared";
import { type ExecInService, parseJob } from "../backups/common.js";
import type { Logger } from "../log.js";
import { secretValues } from "../reconcile/reconciler.js";
import { COMPOSE_FILE, inspectCompose, type ProjectState, type ProjectStore, STATE_FILE } from "../reconcile/store.js";
import { scrubTail } from "../runtime/exec.js";
import type { ComposeProject, ContainerRuntime, VolumeOps } from "../runtime/types.js";
import { ExecError } from "../runtime/types.js";
import { compareFacts, describeProblems, type FactsTarget, readFacts } from "./facts.js";
import type { Journal, Journals } from "./journal.js";
import { apiSmoke } from "./smoke.js";

/**
 * The `upgrade` job, agent side (docs/upgrades.md, ADR 0037). In order, each step journaled
 * before it changes anything:
 *
 * 1. recording_facts: save the old stack's files; read the database's facts (facts.ts);
 * 2. stopping: `compose stop` (containers and volumes stay);
 * 3. copying_data: copy the data volume to `<ref>_<volume>-pre-upgrade` — from here on the copy
 *    is the old data, untouched by anything that follows;
 * 4. migrating_data: write the target's stack files; across PostgreSQL majors, run the major
 *    version step (major-version.ts) on the data volume; same major: nothing;
 * 5. starting: `compose up` of the target's stack;
 * 6. health_check: every required service running and healthy within the deadline;
 * 7. post_check: the facts again — same tables with the same row counts, same extensions,
 *    views and functions;
 * then commit: state.json names the target release (the applied version is unchanged: the
 * control plane's next spec version re-applies the same stack), the copy is removed.
 *
 * Any failure rolls back: stop the new stack, put the old stack's files back, copy the old data
 * back into the data volume, `compose up`, wait for the old required services, and check the
 * facts are those from before. The job answers `rolled_back` (with the failed step and why);
 * only a rollback that fails too makes the job fail.
 *
 * An agent restart mid-way: on start (recoverUpgrades) every journal that has not ended is
 * rolled back the same way — or, when it stopped while committing, committed — and the result
 * waits in the journal for the job's re-delivery.
 */

/**
 * The data step across PostgreSQL majors (major-version.ts). Called with the old stack stopped,
 * the old data safe in `snapshot` (and still in `volume`), and the target's stack files written
 * but not started. When it returns, `volume` must hold a data directory the target release's
 * database service starts on, with the old database's contents; a throw rolls back.
 */
export type MajorVersionStep = (c: {
  ref: string;
  /** Docker volume names: the project's data volume, and the untouched copy of the old data. */
  volume: string;
  snapshot: string;
  /** The old and new releases' database images. */
  oldImage: string;
  newImage: string;
  /** Where the old release's database service mounts the data volume. */
  oldDataPath: string;
  fromMajor: number;
  toMajor: number;
  /** The superuser and database (as in the job's params). */
  user: string;
  database: string;
  /** The target's Compose project (files written, nothing started). */
  project: ComposeProject;
  service: string;
  runtime: ContainerRuntime;
  exec: ExecInService;
  log: Logger;
}) => Promise<void>;

/** The data step across majors and what undoes it (docker-major.ts on Docker hosts). */
export interface MajorVersion {
  move: MajorVersionStep;
  /**
   * Stops and removes whatever move() may have left running for `ref` (an old-major server on the
   * copy of the old data). Idempotent; the rollback calls it before it copies the old data back,
   * also after an agent restart.
   */
  cleanup(ref: string, log: Logger): Promise<void>;
}

export interface UpgradeDeps {
  runtime: ContainerRuntime;
  store: ProjectStore;
  journals: Journals;
  logger: Logger;
  /** Runs `task` while the reconciler applies nothing to `ref` (Reconciler.hold). */
  hold: <T>(ref: string, task: () => Promise<T>) => Promise<T>;
  /** Best effort: tell the control plane the step reached. */
  progress?: (jobId: string, step: UpgradeStep) => Promise<void>;
  /** After the project's containers changed (the health watcher re-checks). */
  onSettled?: (ref: string) => void;
  /** Across PostgreSQL majors; absent, such upgrades roll back with a message saying so. */
  majorVersion?: MajorVersion | undefined;
  /**
   * Where this host reaches the project's gateway once `stack` runs (a published port or the host
   * ingress); the post-check then calls the project's API through it (smoke.ts). Absent or null:
   * no API check.
   */
  gatewayOf?: (ref: string, stack: UpgradeJobParams["stack"]) => string | null;
  /** Health polling interval (tests shorten it). */
  pollMs?: number;
}

class StepFailure extends Error {
  constructor(
    readonly step: UpgradeStep,
    message: string,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errorText(err: unknown, secrets: readonly string[] = []): string {
  const raw =
    err instanceof ExecError
      ? `${err.command === "docker" && err.args[0] === "compose" ? "docker compose" : err.command} exited with ${err.exitCode ?? "a signal"}: ${err.stderr}`
      : err instanceof Error
        ? err.message
        : String(err);
  return scrubTail(raw, secrets, 3000);
}

export class Upgrades {
  /** Recoveries running since start, by job id: a re-delivered job waits for its own. */
  private readonly recovering = new Map<string, Promise<void>>();

  constructor(private readonly deps: UpgradeDeps) {}

  /** The job handler: answer from the journal when there is one, else run the upgrade. */
  async handle(job: Job): Promise<UpgradeJobResult> {
    await this.recovering.get(job.jobId);
    const known = await this.deps.journals.read(job.jobId);
    if (known) return this.answerOf(known);
    const { ref, params } = parseJob(job, UpgradeJobParams, "upgrade");
    return this.deps.hold(ref, async () => {
      const again = await this.deps.journals.read(job.jobId);
      if (again) return this.answerOf(again);
      const j = await this.run(job.jobId, ref, params);
      return this.answerOf(j);
    });
  }

  /** At start: finish every upgrade a previous process left unended (in the background). */
  async recover(): Promise<void> {
    await this.deps.journals.init();
    await this.deps.journals.prune();
    for (const j of await this.deps.journals.list()) {
      if (j.outcome || j.failure) continue;
      const log = this.deps.logger.child({ ref: j.ref, jobId: j.jobId, upgradeId: j.upgradeId });
      log.warn("an upgrade was interrupted by the agent's restart; finishing it", { step: j.step });
      const p = this.deps
        .hold(j.ref, async () => {
          if (j.commit) await this.commit(j, log);
          else
            await this.rollback(
              j,
              j.step,
              `the host agent stopped during the upgrade (at ${j.step.replace(/_/g, " ")})`,
              log,
            );
        })
        .catch((err: unknown) => log.error("could not finish an interrupted upgrade", { err }));
      this.recovering.set(j.jobId, p);
    }
  }

  /** Resolves when every recovery started by recover() has ended (tests). */
  async recovered(): Promise<void> {
    await Promise.all([...this.recovering.values()]);
  }

  private answerOf(j: Journal): UpgradeJobResult {
    if (j.outcome) return j.outcome;
    if (j.failure) throw new Error(j.failure);
    throw new Error(`upgrade ${j.upgradeId} is still being finished after the agent's restart; ask again later`);
  }

  private async run(jobId: string, ref: string, params: UpgradeJobParams): Promise<Journal> {
    const { runtime, store, journals } = this.deps;
    const log = this.deps.logger.child({ ref, jobId, upgradeId: params.upgradeId, to: params.toRelease });
    const volumes = runtime.volumes;
    const exec = runtime.execInService?.bind(runtime);
    if (!volumes || !exec) throw new Error("this agent's container runtime cannot copy volumes or run commands");
    const state = await store.readState(ref);
    if (state?.desiredState !== "running") {
      throw new Error(`project ${ref} is not running on this host (state: ${state?.desiredState ?? "none"})`);
    }
    if (state.release !== params.fromRelease) {
      throw new Error(
        `project ${ref} runs release ${state.release} here, not ${params.fromRelease}; nothing was changed`,
      );
    }
    const oldCompose = await readFile(store.project(ref).composeFile, "utf8");
    const helperImage = serviceImage(oldCompose, params.database.service);
    if (!helperImage) throw new Error(`the project's compose file has no service ${params.database.service}`);
    await journals.init();
    const volume = `${ref}_${params.database.volume}`;
    const j: Journal = {
      jobId,
      ref,
      upgradeId: params.upgradeId,
      fromRelease: params.fromRelease,
      toRelease: params.toRelease,
      step: "recording_facts",
      done: { saved: false, stopped: false, copyStarted: false, copied: false, stackWritten: false },
      volume,
      snapshot: `${volume}-pre-upgrade`,
      database: { service: params.database.service, user: params.database.user, database: params.database.database },
      helperImage,
      fromRequiredServices: params.fromRequiredServices,
      commit: null,
      before: null,
      after: null,
      timings: [],
      outcome: null,
      failure: null,
      startedAt: new Date().toISOString(),
    };
    await journals.write(j);
    const target: FactsTarget = { ref, ...j.database };
    const secrets = secretValues(params.stack.env);
    const step = async <T>(name: UpgradeStep, work: () => Promise<T>): Promise<T> => {
      j.step = name;
      await journals.write(j);
      void this.deps.progress?.(jobId, name).catch(() => undefined);
      log.info("upgrade step", { step: name });
      const started = Date.now();
      try {
        return await work();
      } catch (err) {
        throw err instanceof StepFailure ? err : new StepFailure(name, errorText(err, secrets));
      } finally {
        j.timings.push({ step: name, ms: Date.now() - started });
      }
    };
    try {
      await step("recording_facts", async () => {
        await rm(journals.savedStackDir(jobId), { recursive: true, force: true });
        await cp(store.dir(ref), journals.savedStackDir(jobId), { recursive: true });
        j.done.saved = true;
        await journals.write(j);
        j.before = await readFacts(exec, target);
      });
      await step("stopping", async () => {
        j.done.stopped = true;
        await journals.write(j);
        await runtime.composeStop(await this.currentProject(ref));
      });
      await step("copying_data", async () => {
        j.done.copyStarted = true;
        await journals.write(j);
        await volumes.copy(volume, j.snapshot, helperImage);
        j.done.copied = true;
        await journals.write(j);
      });
      const project = store.project(ref, params.stack.env, secrets);
      await step("migrating_data", async () => {
        j.done.stackWritten = true;
        await journals.write(j);
        await store.writeStack(ref, params.stack);
        if (params.database.fromMajor === params.database.toMajor) return;
        const major = this.deps.majorVersion;
        if (!major) {
          throw new Error(
            `this agent cannot move data from PostgreSQL ${params.database.fromMajor} to ${params.database.toMajor}`,
          );
        }
        const newImage = serviceImage(params.stack.composeFile, params.database.service);
        if (!newImage) throw new Error(`the target's stack has no service ${params.database.service}`);
        const oldDataPath = volumeTarget(oldCompose, params.database.service, params.database.volume);
        if (!oldDataPath) {
          throw new Error(`the project's ${params.database.service} service does not mount ${params.database.volume}`);
        }
        await major.move({
          ref,
          volume,
          snapshot: j.snapshot,
          oldImage: helperImage,
          newImage,
          oldDataPath,
          fromMajor: params.database.fromMajor,
          toMajor: params.database.toMajor,
          user: params.database.user,
          database: params.database.database,
          project,
          service: params.database.service,
          runtime,
          exec,
          log,
        });
      });
      await step("starting", () => runtime.composeUp(project));
      this.deps.onSettled?.(ref);
      await step("health_check", () =>
        waitHealthy(runtime, ref, params.stack.requiredServices, params.healthTimeoutSeconds * 1000, this.poll),
      );
      await step("post_check", async () => {
        j.after = await readFacts(exec, target);
        const problems = compareFacts(j.before as DatabaseFacts, j.after);
        if (problems.length > 0) {
          throw new Error(`the data differs after the upgrade: ${describeProblems(problems)}`);
        }
        const gateway = this.deps.gatewayOf?.(ref, params.stack);
        if (gateway) {
          const failed = await apiSmoke({
            gateway,
            services: inspectCompose(params.stack.composeFile).services,
            anonKey: params.stack.env.ANON_KEY,
            serviceKey: params.stack.env.SERVICE_ROLE_KEY,
          });
          if (failed.length > 0) {
            throw new Error(`the project's API does not answer as it should: ${failed.join("; ")}`);
          }
          log.info("the project's API answers through its gateway", { gateway });
        }
      });
      j.commit = {
        ...state,
        release: params.stack.release,
        memLimitBytes: inspectCompose(params.stack.composeFile).memLimitBytes,
        endpoints: params.stack.endpoints ?? {},
        appliedAt: new Date().toISOString(),
      };
      await journals.write(j);
      await this.commit(j, log);
      return j;
    } catch (err) {
      const failure = err instanceof StepFailure ? err : new StepFailure(j.step, errorText(err, secrets));
      log.warn("upgrade failed; rolling back", { step: failure.step, error: failure.message });
      await this.rollback(j, failure.step, failure.message, log);
      return j;
    }
  }

  private get poll(): number {
    return this.deps.pollMs ?? 1000;
  }

  private async currentProject(ref: string): Promise<ComposeProject> {
    const env = await this.deps.store.readEnv(ref);
    return this.deps.store.project(ref, env, secretValues(env));
  }

  /** The verified target becomes what the agent runs; then the copy of the old data goes. */
  private async commit(j: Journal, log: Logger): Promise<void> {
    if (!j.commit) throw new Error("nothing to commit");
    await this.deps.store.writeState(j.ref, j.commit);
    j.step = "done";
    j.outcome = {
      outcome: "upgraded",
      before: j.before,
      after: j.after,
      timings: j.timings,
    };
    await this.deps.journals.write(j);
    log.info("upgrade completed", { to: j.toRelease, ms: j.timings.reduce((n, t) => n + t.ms, 0) });
    await this.cleanup(j, log);
  }

  private async cleanup(j: Journal, log: Logger): Promise<void> {
    try {
      if (j.done.copyStarted) await this.deps.runtime.volumes?.remove(j.snapshot);
      await rm(this.deps.journals.savedStackDir(j.jobId), { recursive: true, force: true });
    } catch (err) {
      log.warn("could not remove the upgrade's copy of the old data", { snapshot: j.snapshot, err });
    }
  }

  /**
   * Undo what the journal says was done, then verify the old release: healthy, same facts.
   * Records `rolled_back` (with why the upgrade failed) or, when this fails too, the failure.
   */
  private async rollback(j: Journal, failedStep: UpgradeStep, reason: string, log: Logger): Promise<void> {
    const { runtime, journals } = this.deps;
    j.step = "rolling_back";
    await journals.write(j);
    void this.deps.progress?.(j.jobId, "rolling_back").catch(() => undefined);
    const started = Date.now();
    try {
      const volumes = runtime.volumes as VolumeOps;
      if (j.done.stackWritten || j.done.stopped) {
        // Whatever runs (the target's stack, or the old one half-stopped) stops before the data moves.
        await runtime.composeStop(await this.currentProject(j.ref));
      }
      // A server the data step started on the copy of the old data must be gone before the copy moves.
      if (j.done.stackWritten) await this.deps.majorVersion?.cleanup(j.ref, log);
      if (j.done.stackWritten) await this.restoreStack(j);
      if (j.done.copied) {
        await volumes.copy(j.snapshot, j.volume, j.helperImage);
      } else if (j.done.copyStarted) {
        await volumes.remove(j.snapshot);
      }
      await runtime.composeUp(await this.currentProject(j.ref));
      this.deps.onSettled?.(j.ref);
      await waitHealthy(runtime, j.ref, j.fromRequiredServices, 10 * 60_000, this.poll);
      if (j.before) {
        const exec = runtime.execInService?.bind(runtime) as ExecInService;
        const now = await readFacts(exec, { ref: j.ref, ...j.database });
        const problems = compareFacts(j.before, now);
        if (problems.length > 0) throw new Error(`after the rollback ${describeProblems(problems)}`);
      }
    } catch (err) {
      j.timings.push({ step: "rolling_back", ms: Date.now() - started });
      j.failure = `The upgrade failed (${failedStep.replace(/_/g, " ")}: ${reason}) and so did the rollback: ${errorText(err)}`;
      j.step = "done";
      await journals.write(j);
      log.error("upgrade rollback failed", { error: j.failure });
      return;
    }
    j.timings.push({ step: "rolling_back", ms: Date.now() - started });
    j.step = "done";
    j.outcome = {
      outcome: "rolled_back",
      failedStep,
      error: reason.slice(0, 4000),
      before: j.before,
      after: j.after,
      timings: j.timings,
    };
    await journals.write(j);
    log.info("upgrade rolled back", { failedStep, ms: Date.now() - started });
    await this.cleanup(j, log);
  }

  /** Put the old stack's files back (state.json never changed before the commit). */
  private async restoreStack(j: Journal): Promise<void> {
    const dir = this.deps.store.dir(j.ref);
    const saved = this.deps.journals.savedStackDir(j.jobId);
    for (const name of await readdir(dir)) {
      if (name !== STATE_FILE) await rm(join(dir, name), { recursive: true, force: true });
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(saved)) {
      if (name !== STATE_FILE) await cp(join(saved, name), join(dir, name), { recursive: true });
    }
    if (!(await readdir(dir)).includes(COMPOSE_FILE)) throw new Error("the saved stack has no compose file");
  }
}

/** The image of one service of a (JSON) compose file. */
function serviceImage(composeFile: string, service: string): string | null {
  try {
    const doc = JSON.parse(composeFile) as { services?: Record<string, { image?: unknown }> };
    const image = doc.services?.[service]?.image;
    return typeof image === "string" ? image : null;
  } catch {
    return null;
  }
}

/** Where one service of a (JSON) compose file mounts a named volume (`<volume>:<path>[:mode]`). */
export function volumeTarget(composeFile: string, service: string, volume: string): string | null {
  try {
    const doc = JSON.parse(composeFile) as { services?: Record<string, { volumes?: unknown }> };
    const list = doc.services?.[service]?.volumes;
    if (!Array.isArray(list)) return null;
    for (const v of list) {
      if (typeof v !== "string") continue;
      const [name, path] = v.split(":");
      if (name === volume && path?.startsWith("/")) return path;
    }
    return null;
  } catch {
    return null;
  }
}

/**
 * Wait until every required service (every service when none is named) runs and is healthy (or
 * has no health check). A required service that is unhealthy, exited or dead fails at once: its
 * health check already gave up.
 */
export async function waitHealthy(
  runtime: ContainerRuntime,
  ref: string,
  required: readonly string[],
  timeoutMs: number,
  pollMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const containers = await runtime.listProjectContainers(ref);
    const names = required.length > 0 ? required : containers.map((c) => c.service);
    const waiting: string[] = [];
    const broken: string[] = [];
    for (const n of names) {
      const c = containers.find((x) => x.service === n);
      if (c?.state === "running" && (c.health === "healthy" || c.health === "none")) continue;
      if (!c) waiting.push(`${n} (no container)`);
      else if (c.health === "unhealthy") broken.push(`${n} is unhealthy`);
      else if (c.state === "exited" || c.state === "dead") broken.push(`${n} has ${c.state}`);
      else waiting.push(`${n} (${c.state}, ${c.health})`);
    }
    if (broken.length > 0) throw new Error(`service ${broken.join(", ")}`);
    if (waiting.length === 0 && names.length > 0) return;
    if (Date.now() >= deadline) {
      throw new Error(`not healthy within ${Math.round(timeoutMs / 1000)} s: ${waiting.join(", ") || "no services"}`);
    }
    await sleep(pollMs);
  }
}

export type { ProjectState };
