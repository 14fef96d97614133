import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type ExitInfo, ensureBuilt, REPO_ROOT } from "./process.js";

/** The BUILT host agent, run exactly as an operator runs it (`node host-agent/dist/cli.js …`). */
export const AGENT_CLI = join(REPO_ROOT, "host-agent/dist/cli.js");
const BUILD_LOCK = join(tmpdir(), "supamanager-entry-build.lock");

/**
 * Build the workspace when the control-plane entry or the agent CLI is missing or older than any
 * source file (ensureBuilt() only looks at control-plane/ and shared/). Same lock as ensureBuilt,
 * so parallel test files never rebuild dist/ under each other.
 */
export function ensureAgentBuilt(): void {
  ensureBuilt();
  const script = [
    'cd "$1" || exit 1',
    'CLI="$2"',
    'stale() { [ ! -f "$CLI" ] || [ -n "$(find host-agent/src shared/src -name "*.ts" ! -name "*.test.ts" ! -path "*/test-support/*" -newer "$CLI" -print -quit)" ]; }',
    "stale || exit 0",
    "npm run build 2>&1 && exit 0",
    "stale && exit 1",
    "exit 0",
  ].join("\n");
  try {
    execFileSync("flock", [BUILD_LOCK, "sh", "-c", script, "sh", REPO_ROOT, AGENT_CLI], {
      stdio: "pipe",
      timeout: 180_000,
    });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
    throw new Error(
      `npm run build failed and ${AGENT_CLI} is missing or stale: ${e.message}\n${e.stdout?.toString() ?? ""}${e.stderr?.toString() ?? ""}`,
    );
  }
}

/** One JSON log line of the agent (`ts`, `level`, `msg`, fields). */
export type AgentLogLine = { ts?: string; level?: string; msg?: string } & Record<string, unknown>;

export interface AgentProcess {
  pid: number;
  /** Every stdout/stderr line so far, live; both interleaved in `output`. */
  stdout: string[];
  stderr: string[];
  output: string[];
  exited: Promise<ExitInfo>;
  /** stdout lines that parse as JSON objects (the agent's log). */
  logs(): AgentLogLine[];
  /** Resolves with the first log line (already seen or future) matching `pred`; rejects after timeoutMs. */
  waitForLog(pred: (l: AgentLogLine) => boolean, timeoutMs: number): Promise<AgentLogLine>;
  /** Send `signal` (default SIGTERM) and wait for the exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitInfo>;
  /**
   * SIGKILL the agent's whole process group (the agent and any Compose command it is running, as
   * when systemd kills a crashed unit's cgroup) and wait for the agent to go.
   */
  kill9(): Promise<ExitInfo>;
  /** The last `n` output lines, for failure messages. */
  tail(n?: number): string;
}

const live = new Set<ChildProcess>();

/** Only PATH and HOME (Compose v1 wants HOME) plus `env`: nothing inherited from the test runner. */
function agentEnv(env: Record<string, string> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
  return Object.fromEntries(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
}

function parseLine(line: string): AgentLogLine | null {
  if (!line.startsWith("{")) return null;
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as AgentLogLine) : null;
  } catch {
    return null;
  }
}

/** Spawn `node host-agent/dist/cli.js <args>` and capture its output. */
export function spawnAgent(args: string[], env?: Record<string, string>): AgentProcess {
  const child = spawn(process.execPath, [AGENT_CLI, ...args], {
    cwd: REPO_ROOT,
    env: agentEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so kill9() can take its Compose children down with it.
    detached: true,
  });
  live.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const output: string[] = [];
  const parsed: AgentLogLine[] = [];
  const waiters = new Set<(l: AgentLogLine) => void>();
  const collect = (stream: NodeJS.ReadableStream, into: string[]) => {
    const rl = createInterface({ input: stream });
    rl.on("line", (line) => {
      into.push(line);
      output.push(line);
      const p = into === stdout ? parseLine(line) : null;
      if (p) {
        parsed.push(p);
        for (const w of [...waiters]) w(p);
      }
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
      void streamsDone.then(() => resolve({ code, signal }));
    });
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const tail = (n = 40) => output.slice(-n).join("\n");
  const stop = async (signal: NodeJS.Signals = "SIGTERM", graceMs = 40_000): Promise<ExitInfo> => {
    if (running()) child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    pid: child.pid ?? -1,
    stdout,
    stderr,
    output,
    exited,
    logs: () => [...parsed],
    waitForLog(pred, timeoutMs) {
      const seen = parsed.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching agent log line within ${timeoutMs} ms; last output:\n${tail()}`));
        }, timeoutMs);
        const w = (l: AgentLogLine) => {
          if (!pred(l)) return;
          clearTimeout(timer);
          waiters.delete(w);
          resolve(l);
        };
        waiters.add(w);
      });
    },
    stop,
    kill9: async () => {
      if (running() && child.pid) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          child.kill("SIGKILL");
        }
      }
      return stop("SIGKILL", 5_000);
    },
    tail,
  };
}

/** `join` (runs to its exit): returns the exit info and output. SIGKILL after `timeoutMs`. */
export async function joinAgent(
  opts: { url: string; token: string; dataDir: string; name?: string; bindAddress?: string },
  timeoutMs = 30_000,
): Promise<ExitInfo & { output: string }> {
  const args = ["join", "--url", opts.url, "--token", opts.token, "--data-dir", opts.dataDir];
  if (opts.name) args.push("--name", opts.name);
  if (opts.bindAddress) args.push("--bind-address", opts.bindAddress);
  const p = spawnAgent(args);
  const timer = setTimeout(() => void p.stop("SIGKILL"), timeoutMs);
  try {
    const e = await p.exited;
    return { ...e, output: p.output.join("\n") };
  } finally {
    clearTimeout(timer);
  }
}

/** `run --data-dir <dir>`: the long-running agent. */
export function runAgent(dataDir: string, logLevel: "debug" | "info" = "info"): AgentProcess {
  return spawnAgent(["run", "--data-dir", dataDir, "--log-level", logLevel]);
}

/** SIGKILL every agent still running (afterAll safety net) and wait for them to go. */
export async function killAllAgents(): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGKILL");
        }),
    ),
  );
}

process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});
