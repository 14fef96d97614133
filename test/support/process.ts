import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root and the built Node entry the tests run, exactly as `npm start` does. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const ENTRY = join(REPO_ROOT, "control-plane/dist/entry/node.js");
const BUILD_LOCK = join(tmpdir(), "supamanager-entry-build.lock");
const READY_LINE = /SupaManager is running at (\S+)/;

/**
 * Build the workspace when the entry is missing or older than any source file. The check runs
 * under a file lock, so parallel test files build once and never rewrite dist/ under each other.
 * tsc emits JavaScript even when some file fails to type-check; if the build reports errors but
 * the entry is fresh afterwards, the run goes on with a warning (type errors are the typecheck's
 * job); a build that leaves dist/ stale or missing fails the tests.
 */
export function ensureBuilt(): void {
  const script = [
    'cd "$1" || exit 1',
    'ENTRY="$2"',
    'stale() { [ ! -f "$ENTRY" ] || [ -n "$(find control-plane/src shared/src -name "*.ts" ! -name "*.test.ts" ! -path "*/test-support/*" -newer "$ENTRY" -print -quit)" ]; }',
    "stale || exit 0",
    "npm run build 2>&1 && exit 0",
    "stale && exit 1",
    "exit 3",
  ].join("\n");
  try {
    execFileSync("flock", [BUILD_LOCK, "sh", "-c", script, "sh", REPO_ROOT, ENTRY], {
      stdio: "pipe",
      timeout: 180_000,
    });
  } catch (err) {
    const e = err as { status?: number; stdout?: Buffer; stderr?: Buffer; message: string };
    const output = `${e.stdout?.toString() ?? ""}${e.stderr?.toString() ?? ""}`;
    if (e.status === 3) {
      console.warn(`npm run build reported errors, but the entry was emitted and is fresh; testing it.\n${output}`);
      return;
    }
    throw new Error(`npm run build failed and ${ENTRY} is missing or stale: ${e.message}\n${output}`);
  }
}

/** The built operator CLI (`supamanager`), as `npx supamanager` runs it. */
export const CLI_ENTRY = join(REPO_ROOT, "cli/dist/cli.js");

/**
 * Build the operator CLI (tsc, a few seconds) under the entry build's lock, so a parallel
 * `npm run build` never rewrites cli/dist under a test that runs it.
 */
export function ensureCliBuilt(): void {
  execFileSync(
    "flock",
    [BUILD_LOCK, process.execPath, join(REPO_ROOT, "node_modules/typescript/bin/tsc"), "-p", "cli/tsconfig.build.json"],
    { cwd: REPO_ROOT, stdio: "pipe", timeout: 120_000 },
  );
}

/** What a finished CLI run printed and how it exited. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the built CLI to its end with exactly `env` (plus nothing inherited but what the caller
 * passes), collecting its output.
 */
export function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A fresh, private data directory; removed by cleanupTmpDirs(). */
const tmpDirs = new Set<string>();
export function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "supamanager-entry-"));
  tmpDirs.add(dir);
  return dir;
}
export function cleanupTmpDirs(): void {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
  tmpDirs.clear();
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface EntryProcess {
  /** Base URL printed by the process ("SupaManager is running at <url>"). */
  url: string;
  pid: number;
  /** Every stdout line (the JSON log) and stderr line so far, live. */
  stdout: string[];
  stderr: string[];
  /** Both streams, interleaved in arrival order. */
  output: string[];
  /** Resolves when the process exits. */
  exited: Promise<ExitInfo>;
  /** Send `signal` (default SIGTERM) and wait for the exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitInfo>;
}

interface Spawned {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  output: string[];
  exited: Promise<ExitInfo>;
  onStderrLine: Set<(line: string) => void>;
}

const live = new Set<ChildProcess>();

/**
 * The environment a child gets: ONLY these variables plus `env` (no inherited DATABASE_URL,
 * NODE_ENV or secrets from the test runner). A key set to undefined is left out.
 */
export function entryEnv(env: Record<string, string | undefined>): Record<string, string> {
  const base: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    PORT: "0",
    HOST: "127.0.0.1",
    SUPAMANAGER_LOG_LEVEL: "info",
    // No host agent for this machine unless a test asks for one (ADR 0019).
    SUPAMANAGER_LOCAL_HOST: "off",
    // The default release pulls upstream images; tests run the locally built one.
    SUPAMANAGER_RELEASE: "local",
    ...env,
  };
  return Object.fromEntries(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
}

function spawnEntry(env: Record<string, string | undefined>): Spawned {
  const child = spawn(process.execPath, [ENTRY], {
    cwd: REPO_ROOT,
    env: entryEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const output: string[] = [];
  const onStderrLine = new Set<(line: string) => void>();
  const collect = (stream: NodeJS.ReadableStream, into: string[]) => {
    const rl = createInterface({ input: stream });
    rl.on("line", (line) => {
      into.push(line);
      output.push(line);
      if (into === stderr) for (const fn of onStderrLine) fn(line);
    });
    return new Promise<void>((resolve) => rl.on("close", resolve));
  };
  const streamsDone = Promise.all([
    collect(child.stdout as NodeJS.ReadableStream, stdout),
    collect(child.stderr as NodeJS.ReadableStream, stderr),
  ]);
  const exited = new Promise<ExitInfo>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      live.delete(child);
      // Wait for the last lines, so callers can assert on the final message.
      void streamsDone.then(() => resolve({ code, signal }));
    });
  });
  return { child, stdout, stderr, output, exited, onStderrLine };
}

/**
 * Start the built entry with `env` and wait (up to `timeoutMs`) for its ready line on stderr.
 * Rejects with the process output if it exits first or never becomes ready.
 */
export async function startEntry(
  env: Record<string, string | undefined>,
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Promise<EntryProcess> {
  const s = spawnEntry(env);
  const url = await new Promise<string>((resolve, reject) => {
    const dump = () => `\n--- output ---\n${s.output.join("\n")}`;
    const timer = setTimeout(() => {
      s.child.kill("SIGKILL");
      reject(new Error(`the entry did not print its ready line within ${timeoutMs} ms${dump()}`));
    }, timeoutMs);
    const onLine = (line: string) => {
      const m = READY_LINE.exec(line);
      if (m?.[1]) {
        clearTimeout(timer);
        s.onStderrLine.delete(onLine);
        resolve(m[1]);
      }
    };
    s.onStderrLine.add(onLine);
    s.exited.then(
      (e) => {
        clearTimeout(timer);
        reject(new Error(`the entry exited (code ${e.code}, signal ${e.signal}) before it was ready${dump()}`));
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
  return {
    url,
    pid: s.child.pid ?? -1,
    stdout: s.stdout,
    stderr: s.stderr,
    output: s.output,
    exited: s.exited,
    stop: (signal = "SIGTERM", graceMs = 15_000) => stopChild(s, signal, graceMs),
  };
}

async function stopChild(s: Spawned, signal: NodeJS.Signals, graceMs: number): Promise<ExitInfo> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill(signal);
  const timer = setTimeout(() => s.child.kill("SIGKILL"), graceMs);
  try {
    return await s.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Run the entry expecting it to stop by itself (a start-up failure); SIGKILL after `timeoutMs`. */
export async function runToExit(
  env: Record<string, string | undefined>,
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Promise<ExitInfo & { stdout: string[]; stderr: string[]; timedOut: boolean }> {
  const s = spawnEntry(env);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    s.child.kill("SIGKILL");
  }, timeoutMs);
  try {
    const e = await s.exited;
    return { ...e, stdout: s.stdout, stderr: s.stderr, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILL every child still running (afterEach/afterAll safety net) and wait for them to go. */
export async function killAll(): Promise<void> {
  const waits = [...live].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  );
  await Promise.all(waits);
}

// Last resort if the test worker itself goes away: never leave a control plane behind.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});
