/**
 * Helpers every benchmark script shares: options, the admin database, the platform server, the
 * API, waits, the machine line.
 */
import { spawn } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import pg from "pg";

/** Numeric command-line options (`--name value`), each with its default; unknown options throw. */
export function numberOptions<K extends string>(defaults: Record<K, string>): Record<K, number> {
  const names = Object.keys(defaults) as K[];
  const options: Record<string, { type: "string"; default: string }> = {};
  for (const k of names) options[k] = { type: "string", default: defaults[k] };
  const { values } = parseArgs({ options });
  return Object.fromEntries(names.map((k) => [k, Number(values[k])])) as Record<K, number>;
}

/** The PostgreSQL server benchmarks create their throwaway databases on. */
export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Run one statement on the admin database (create/drop the benchmark's database). */
export async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The URL of a database named `name` on the admin server. */
export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The secrets of the benchmarks' control planes (loopback only, thrown away with the database). */
export const BENCH_SECRETS = {
  SUPAMANAGER_JWT_SECRET: "bench-jwt-secret-0123456789abcdef0123456789",
  SUPAMANAGER_ENCRYPTION_KEY: "ab".repeat(32),
  SUPAMANAGER_RELEASE: "local",
};

/**
 * Starts bench/platform-server.ts in a child process: the real Node control plane (it migrates the
 * database at start) on `databaseUrl` — or, with `{ pglite: dataDir }`, on PGlite in that
 * directory — a bare Hono route as a baseline and the floor app (bench/floor-app.ts). Resolves
 * with the URLs once they listen; `stop()` ends the child. With `cpuProfileDir`, `startProfile()`
 * starts the child's CPU profiler (so the profile covers the load, not the setup) and `stop()` writes
 * it there as a `.cpuprofile` (Chrome DevTools, speedscope).
 */
export async function startPlatformServer(
  database: string | { pglite: string },
  opts: { cpuProfileDir?: string; cwd?: string } = {},
): Promise<{ controlPlane: string; baseline: string; floor: string; startProfile(): void; stop(): Promise<void> }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...BENCH_SECRETS, NODE_ENV: "production" };
  if (typeof database === "string") env.DATABASE_URL = database;
  else {
    delete env.DATABASE_URL;
    env.SUPAMANAGER_DATA_DIR = database.pglite;
  }
  if (opts.cpuProfileDir) env.BENCH_CPU_PROFILE_DIR = opts.cpuProfileDir;
  const child = spawn(process.execPath, ["--import", "tsx", "bench/platform-server.ts"], {
    env,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout });
      rl.once("line", resolve);
      child.once("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
      // PGlite's first open and migrations take a while on a busy machine.
      setTimeout(() => reject(new Error("bench server did not start in 300 s")), 300_000).unref();
    });
    const urls = JSON.parse(line) as { controlPlane: string; baseline: string; floor: string };
    return { ...urls, startProfile: () => child.kill("SIGUSR2"), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A JSON API call that throws with the answer's text on any non-2xx status. */
export async function api<T>(
  base: string,
  path: string,
  init: { method?: string; token?: string; body?: unknown } = {},
): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? "GET",
    headers: { "content-type": "application/json", ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Poll `check` every `intervalMs` until it is true; throw after `timeoutMs`. */
export async function until(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** The value at percentile `p` of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** "2 × AMD EPYC, 24 GiB, Node v20.20.2" — written next to every result. */
export function machineLine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}
