import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";

/**
 * What the agent keeps about its own versions (ADR 0040), in `<data-dir>/agent/`:
 *
 * - `state.json`: which installed version runs (`current`; null = the base install, the one the
 *   supervisor starts), a version on trial (`pending`: it runs until it writes the health marker
 *   or its deadline passes, then it is kept or rolled back), the version before (`previous`, kept
 *   on disk for the next rollback) and the last update that did not take (`failure`, reported in
 *   hello until an update works).
 * - `versions/<version>-<digest>/package/`: each downloaded version, unpacked once, never
 *   overwritten while it may run.
 * - `healthy.json`: written by a running agent after each welcome: {version, pid, at}.
 */

/** An unpacked version: its directory and the CLI the launcher runs. */
export const Install = z.object({
  version: z.string().min(1).max(64),
  /** The package directory (`…/versions/<version>-<digest>/package`). */
  dir: z.string().min(1),
  /** Its `supamanager-agent` bin, an absolute path inside `dir`. */
  cli: z.string().min(1),
});
export type Install = z.infer<typeof Install>;

export const UpdateFailure = z.object({
  version: z.string().min(1).max(64),
  reason: z.string().min(1).max(1000),
  at: z.string(),
});
export type UpdateFailure = z.infer<typeof UpdateFailure>;

export const UpdateState = z.object({
  /** The version the launcher runs; null: the base install itself. */
  current: Install.nullable().default(null),
  /** The version `current` replaced, kept for a rollback; null: the base install. */
  previous: Install.nullable().default(null),
  /** Set while `current` is on trial. */
  pending: z
    .object({
      /** When the trial began (the first start of the new version). */
      since: z.string(),
      deadlineSeconds: z.number().int().positive(),
      /** Starts of the new version so far; a trial that keeps being cut short is given up. */
      starts: z.number().int().nonnegative().default(0),
    })
    .nullable()
    .default(null),
  failure: UpdateFailure.nullable().default(null),
});
export type UpdateState = z.infer<typeof UpdateState>;

export const HealthMarker = z.object({
  version: z.string(),
  pid: z.number().int(),
  at: z.string(),
});
export type HealthMarker = z.infer<typeof HealthMarker>;

export const EMPTY_STATE: UpdateState = { current: null, previous: null, pending: null, failure: null };

export const updateDir = (dataDir: string) => join(dataDir, "agent");
export const versionsDir = (dataDir: string) => join(updateDir(dataDir), "versions");
const statePath = (dataDir: string) => join(updateDir(dataDir), "state.json");
export const healthPath = (dataDir: string) => join(updateDir(dataDir), "healthy.json");

async function writeAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/**
 * The update state; a missing file is the empty state (nothing installed: the base runs). A file
 * that does not parse is also read as empty, so a damaged state file can never keep the host
 * without an agent: the base install runs and the control plane's wanted version is fetched again.
 */
export async function readUpdateState(dataDir: string): Promise<{ state: UpdateState; damaged: boolean }> {
  let text: string;
  try {
    text = await readFile(statePath(dataDir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { state: { ...EMPTY_STATE }, damaged: false };
    throw err;
  }
  try {
    const parsed = UpdateState.safeParse(JSON.parse(text));
    if (parsed.success) return { state: parsed.data, damaged: false };
  } catch {
    // not JSON
  }
  return { state: { ...EMPTY_STATE }, damaged: true };
}

export async function writeUpdateState(dataDir: string, state: UpdateState): Promise<void> {
  await mkdir(updateDir(dataDir), { recursive: true, mode: 0o700 });
  await writeAtomic(statePath(dataDir), state);
}

/** Written by a running agent after a welcome: the launcher's sign that this process reconnected. */
export async function writeHealthMarker(dataDir: string, marker: HealthMarker): Promise<void> {
  await mkdir(updateDir(dataDir), { recursive: true, mode: 0o700 });
  await writeAtomic(healthPath(dataDir), marker);
}

export async function readHealthMarker(dataDir: string): Promise<HealthMarker | null> {
  try {
    const parsed = HealthMarker.safeParse(JSON.parse(await readFile(healthPath(dataDir), "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Remove unpacked versions other than the ones `keep` names (the running one and its fallback). */
export async function pruneVersions(dataDir: string, keep: Array<Install | null>): Promise<void> {
  const keepDirs = new Set(keep.filter((i): i is Install => i !== null).map((i) => join(i.dir, "..")));
  let entries: string[];
  try {
    entries = await readdir(versionsDir(dataDir));
  } catch {
    return;
  }
  for (const name of entries) {
    const dir = join(versionsDir(dataDir), name);
    if (!keepDirs.has(dir)) await rm(dir, { recursive: true, force: true });
  }
}
