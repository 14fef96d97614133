import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseFacts, UpgradeJobResult, UpgradeStep } from "@supamanager/shared";
import { z } from "zod";
import { ProjectState, writeFileAtomic } from "../reconcile/store.js";

/**
 * The upgrade journal: one file per upgrade job in `<data-dir>/upgrades/`, rewritten atomically
 * before each step that changes something, so an agent that died mid-way knows on its next start
 * what it had done and undoes it (or, after the new release was verified, finishes it). The old
 * stack's files are kept beside it in `<job id>.old/` until the upgrade has ended.
 */

export const Journal = z.object({
  jobId: z.string(),
  ref: z.string(),
  upgradeId: z.string(),
  fromRelease: z.string(),
  toRelease: z.string(),
  /** The step running (or last run); a restart reports it as the step that failed. */
  step: UpgradeStep,
  /** What has been done so far; rollback undoes exactly these. */
  done: z.object({
    /** The old stack's files are saved in `<job id>.old/`. */
    saved: z.boolean(),
    stopped: z.boolean(),
    /** The copy of the data volume was started (a partial copy may exist). */
    copyStarted: z.boolean(),
    /** The copy is complete: from here on the data volume may change, and rollback copies it back. */
    copied: z.boolean(),
    /** The target's stack files were (being) written into the project directory. */
    stackWritten: z.boolean(),
  }),
  volume: z.string(),
  snapshot: z.string(),
  /** The database service and the superuser and database the checks use. */
  database: z.object({ service: z.string(), user: z.string(), database: z.string() }),
  /** An image that can run `sh`, `find` and `cp` (the old release's database image). */
  helperImage: z.string(),
  fromRequiredServices: z.array(z.string()),
  /** state.json as the commit writes it (set when the commit starts). */
  commit: ProjectState.nullable().default(null),
  before: DatabaseFacts.nullable().default(null),
  after: DatabaseFacts.nullable().default(null),
  timings: z.array(z.object({ step: UpgradeStep, ms: z.number().int().nonnegative() })).default([]),
  /** How it ended: the job's answer. */
  outcome: UpgradeJobResult.nullable().default(null),
  /** It ended without a verified release (the rollback failed): the job's error. */
  failure: z.string().nullable().default(null),
  startedAt: z.string(),
});
export type Journal = z.infer<typeof Journal>;

/** Journals of ended upgrades are kept this long, to answer a re-delivered job. */
const KEEP_ENDED_MS = 30 * 24 * 3600 * 1000;

export class Journals {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "upgrades");
  }

  private file(jobId: string): string {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(jobId)) throw new Error(`invalid job id ${JSON.stringify(jobId)}`);
    return join(this.dir, `${jobId}.json`);
  }

  /** Where the old stack's files are kept while the upgrade runs. */
  savedStackDir(jobId: string): string {
    return `${this.file(jobId).slice(0, -".json".length)}.old`;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async read(jobId: string): Promise<Journal | null> {
    let text: string;
    try {
      text = await readFile(this.file(jobId), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    return Journal.parse(JSON.parse(text));
  }

  async write(j: Journal): Promise<void> {
    await writeFileAtomic(this.file(j.jobId), `${JSON.stringify(j, null, 2)}\n`, 0o600);
  }

  /** Every journal on disk (an unreadable one is an error: it must not be silently skipped). */
  async list(): Promise<Journal[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: Journal[] = [];
    for (const n of names.filter((x) => x.endsWith(".json"))) {
      const j = await this.read(n.slice(0, -".json".length));
      if (j) out.push(j);
    }
    return out;
  }

  /** Forget ended upgrades older than KEEP_ENDED_MS. */
  async prune(now = Date.now()): Promise<void> {
    for (const j of await this.list()) {
      if (!j.outcome && !j.failure) continue;
      const s = await stat(this.file(j.jobId)).catch(() => null);
      if (s && now - s.mtimeMs > KEEP_ENDED_MS) {
        await rm(this.file(j.jobId), { force: true });
        await rm(this.savedStackDir(j.jobId), { recursive: true, force: true });
      }
    }
  }
}
