import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../support/process.js";

/**
 * Running the official `supabase` CLI (the root devDependency, pinned to an exact version) the
 * way a user does: `supabase --profile <file> …` with SUPABASE_ACCESS_TOKEN, a private HOME (its
 * telemetry and traces land there), no standard input, and a bound on every run.
 */

/** The npm package's launcher; it execs the platform binary from @supabase/cli-<os>-<arch>. */
export const SUPABASE_CLI = join(REPO_ROOT, "node_modules/supabase/dist/supabase.js");
export const SUPABASE_CLI_VERSION = "2.117.0";

export function cliInstalled(): boolean {
  return existsSync(SUPABASE_CLI);
}

/** A profile pointing the CLI's Management API client at `apiUrl` (our control plane). */
export function writeProfile(dir: string, apiUrl: string): string {
  const file = join(dir, "profile.yaml");
  writeFileSync(
    file,
    ["name: supamanager", `api_url: ${apiUrl}`, `dashboard_url: ${apiUrl}`, "project_host: supamanager.test", ""].join(
      "\n",
    ),
  );
  return file;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What ran and what came out, for assertion messages. */
  describe: string;
}

export interface CliOptions {
  profile: string;
  token: string;
  home: string;
  cwd: string;
  timeoutMs?: number;
}

/** Run `supabase --profile <profile> ...args`; never throws on a non-zero exit. */
export function runSupabase(args: string[], o: CliOptions): Promise<CliResult> {
  const argv = [SUPABASE_CLI, "--profile", o.profile, ...args];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: o.home,
    SUPABASE_ACCESS_TOKEN: o.token,
    DO_NOT_TRACK: "1",
    SUPABASE_TELEMETRY_DISABLED: "1",
    NO_COLOR: "1",
  };
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      argv,
      { cwd: o.cwd, env, timeout: o.timeoutMs ?? 60_000, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
        const code = e ? (typeof e.code === "number" ? e.code : null) : 0;
        const killed = e?.killed ? " (killed: timed out)" : "";
        resolve({
          code,
          stdout,
          stderr,
          describe: `supabase ${args.join(" ")} → exit ${code}${killed}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
        });
      },
    );
    child.stdin?.end();
  });
}

/**
 * Parse the CLI's JSON output, failing with the whole run when it is not JSON. Some commands
 * print a line of text before the JSON (`orgs create`: "Created organization: …"), so parsing
 * starts at the first line that opens an object or array.
 */
export function jsonOf<T>(r: CliResult): T {
  const lines = r.stdout.split("\n");
  const start = lines.findIndex((l) => l.startsWith("{") || l.startsWith("["));
  try {
    if (start < 0) throw new Error("no JSON");
    return JSON.parse(lines.slice(start).join("\n")) as T;
  } catch {
    throw new Error(`expected JSON on stdout:\n${r.describe}`);
  }
}
