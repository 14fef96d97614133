import { execFile } from "node:child_process";
import { ExecError } from "./types.js";

export const STDERR_TAIL_CHARS = 2000;

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Values to replace with *** in the error (secrets that compose might echo). */
  secrets?: readonly string[];
}

/** Replace secrets and keep the last `max` characters: what is safe and useful to report. */
export function scrubTail(text: string, secrets: readonly string[] = [], max = STDERR_TAIL_CHARS): string {
  let out = text;
  // Longest first, so a secret containing another one is replaced whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length > 0) out = out.split(s).join("***");
  }
  out = out.trim();
  return out.length > max ? `…${out.slice(out.length - max)}` : out;
}

/** Run a program with an argv array (never a shell); resolves with stdout or rejects with ExecError. */
export function run(command: string, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      {
        cwd: opts.cwd,
        env: opts.env,
        timeout: opts.timeoutMs ?? 0,
        maxBuffer: 16 * 1024 * 1024,
        encoding: "utf8",
        windowsHide: true,
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string };
        const exitCode = typeof e.code === "number" ? e.code : null;
        let detail = scrubTail(stderr || stdout || "", opts.secrets);
        if (e.code === "ENOENT") detail = `${command}: not found`;
        else if (e.killed && opts.timeoutMs) detail = `timed out after ${opts.timeoutMs} ms; ${detail}`;
        reject(new ExecError(command, args, exitCode, detail));
      },
    );
  });
}
