import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { DesiredState, ProjectRef, type Stack } from "@supamanager/shared";
import { z } from "zod";
import type { ComposeProject } from "../runtime/types.js";

export const COMPOSE_FILE = "docker-compose.json";
export const ENV_FILE = ".env";
export const STATE_FILE = "state.json";
const RESERVED = new Set([COMPOSE_FILE, ENV_FILE, STATE_FILE]);
const TRASH_PREFIX = ".trash-";

/** What the agent last applied successfully for one project; written only after Compose succeeded. */
export const ProjectState = z.object({
  appliedVersion: z.number().int().nonnegative(),
  desiredState: DesiredState,
  restartNonce: z.number().int().nonnegative(),
  release: z.string(),
  /** Sum of the services' memory limits, for the capacity report. */
  memLimitBytes: z.number().int().nonnegative().default(0),
  appliedAt: z.string(),
  /** The stack's service endpoints (name → base URL on the bind address), for RPCs. */
  endpoints: z.record(z.string(), z.string()).default({}),
  /** The stack's host ingress route (Stack.ingress, ADR 0036): absent when served directly. */
  ingress: z.object({ hostname: z.string(), upstream: z.string(), endpoint: z.string() }).optional(),
});
export type ProjectState = z.infer<typeof ProjectState>;

/** Write a file so readers see the old or the new content, never half of it. */
export async function writeFileAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString("hex")}`;
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(content, "utf8");
    await fh.sync();
  } finally {
    await fh.close();
  }
  // The umask may have narrowed the mode given to open(); the stack says exactly what it wants.
  await chmod(tmp, mode);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Variables that steer Docker or Compose themselves; a stack may not set them. */
const RESERVED_ENV = /^(PATH|HOME|DOCKER_[A-Z0-9_]*|COMPOSE_[A-Z0-9_]*)$/;

/**
 * Compose .env lines. Single quotes make a value literal in both Compose v1 (python-dotenv) and
 * v2 (no `$` interpolation, no escapes), so a password full of `$` survives. A value that can't be
 * single-quoted is refused rather than written ambiguously.
 */
export function renderEnvFile(env: Record<string, string>): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new Error(`invalid env name ${JSON.stringify(key)}`);
    if (RESERVED_ENV.test(key)) throw new Error(`env name ${key} is reserved for the agent's own use of Docker`);
    if (/['\r\n]/.test(value)) throw new Error(`env value of ${key} contains a quote or a line break`);
    lines.push(`${key}='${value}'`);
  }
  return `${lines.join("\n")}\n`;
}

/** Docker's memory strings ("512m", "1g", 1048576) to bytes; binary units like Docker's own parser. */
export function parseMemory(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return Math.floor(value);
  if (typeof value !== "string") return 0;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(value);
  if (!m) return 0;
  const power = { "": 0, k: 1, m: 2, g: 3, t: 4 }[(m[2] ?? "").toLowerCase()] ?? 0;
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/** Service names and the sum of their memory limits, when the compose file is JSON (it is, from us). */
export function inspectCompose(composeFile: string): { services: string[]; memLimitBytes: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(composeFile);
  } catch {
    return { services: [], memLimitBytes: 0 };
  }
  const services = (doc as { services?: Record<string, unknown> } | null)?.services;
  if (!services || typeof services !== "object") return { services: [], memLimitBytes: 0 };
  let total = 0;
  for (const svc of Object.values(services)) {
    const s = svc as { mem_limit?: unknown; deploy?: { resources?: { limits?: { memory?: unknown } } } } | null;
    total += parseMemory(s?.deploy?.resources?.limits?.memory ?? s?.mem_limit);
  }
  return { services: Object.keys(services), memLimitBytes: total };
}

/** The projects directory: `<data-dir>/projects/<ref>/` with the compose file, .env, stack files and state.json. */
export class ProjectStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(resolve(dataDir), "projects");
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await chmod(this.root, 0o700);
    // Leftovers of a removal or a write interrupted by a crash.
    for (const name of await readdir(this.root)) {
      if (name.startsWith(TRASH_PREFIX)) await rm(join(this.root, name), { recursive: true, force: true });
    }
  }

  dir(ref: string): string {
    return join(this.root, ProjectRef.parse(ref));
  }

  project(ref: string, env: Record<string, string> = {}, secrets: readonly string[] = []): ComposeProject {
    const dir = this.dir(ref);
    return { ref, dir, composeFile: join(dir, COMPOSE_FILE), envFile: join(dir, ENV_FILE), env, secrets };
  }

  async exists(ref: string): Promise<boolean> {
    try {
      await stat(join(this.dir(ref), COMPOSE_FILE));
      return true;
    } catch {
      return false;
    }
  }

  /** The recorded state, or null when there is none (or it is unreadable: then the project is re-applied). */
  async readState(ref: string): Promise<ProjectState | null> {
    let text: string;
    try {
      text = await readFile(join(this.dir(ref), STATE_FILE), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    try {
      const parsed = ProjectState.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }

  async writeState(ref: string, state: ProjectState): Promise<void> {
    await writeFileAtomic(join(this.dir(ref), STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o600);
  }

  async listRefs(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    return names.filter((n) => ProjectRef.safeParse(n).success).sort();
  }

  async listStates(): Promise<Array<{ ref: string; state: ProjectState | null }>> {
    const out: Array<{ ref: string; state: ProjectState | null }> = [];
    for (const ref of await this.listRefs()) {
      // An unreadable state counts as unknown: reported so, and the apply that follows says why.
      out.push({ ref, state: await this.readState(ref).catch(() => null) });
    }
    return out;
  }

  /** The values of the project's .env as written by renderEnvFile ({} when there is none). */
  async readEnv(ref: string): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await readFile(join(this.dir(ref), ENV_FILE), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw err;
    }
    const env: Record<string, string> = {};
    for (const line of text.split("\n")) {
      const m = /^([A-Z_][A-Z0-9_]*)='(.*)'$/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) env[m[1]] = m[2];
    }
    return env;
  }

  /** Write everything Compose will read: compose file and .env (0600), then the stack's files with their modes. */
  async writeStack(ref: string, stack: Stack): Promise<void> {
    const dir = this.dir(ref);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    for (const f of stack.files) {
      const target = resolve(dir, f.path);
      const rel = relative(dir, target);
      // The protocol regex already refuses `..` and absolute paths; check again where it matters.
      if (rel === "" || rel.startsWith("..") || rel.split(sep).includes("..") || target === dir) {
        throw new Error(`stack file path ${JSON.stringify(f.path)} leaves the project directory`);
      }
      if (RESERVED.has(rel)) throw new Error(`stack file path ${JSON.stringify(f.path)} is reserved`);
    }
    await writeFileAtomic(join(dir, COMPOSE_FILE), stack.composeFile, 0o600);
    await writeFileAtomic(join(dir, ENV_FILE), renderEnvFile(stack.env), 0o600);
    for (const f of stack.files) {
      const target = resolve(dir, f.path);
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      await writeFileAtomic(target, f.content, f.mode);
    }
  }

  /** Remove a project's directory: renamed away first (atomic), so a crash never leaves half a project. */
  async remove(ref: string): Promise<void> {
    const dir = this.dir(ref);
    const trash = join(this.root, `${TRASH_PREFIX}${ref}-${randomBytes(4).toString("hex")}`);
    try {
      await rename(dir, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    await rm(trash, { recursive: true, force: true });
  }
}
