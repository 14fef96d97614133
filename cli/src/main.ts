import { hostname } from "node:os";
import { createSpinner } from "nanospinner";
import { commandHelp, groupHelp, resolve } from "./args.js";
import { COMMANDS, GROUPS, type Output } from "./commands.js";
import { configPath } from "./config.js";
import { CliError, EXIT, type ExitCode } from "./errors.js";
import type { LiveLine } from "./wait.js";

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** A live line for long waits; only when stderr is a terminal. */
  live?: () => LiveLine;
}

/** The live line on a terminal: nanospinner on stderr, permanent lines printed above it. */
function spinnerLine(): LiveLine {
  const spinner = createSpinner("", { stream: process.stderr }).start();
  return {
    update: (text) => {
      spinner.update({ text });
    },
    print: (line) => {
      spinner.clear();
      process.stderr.write(`${line}\n`);
      spinner.render();
    },
    stop: () => {
      spinner.stop();
    },
  };
}

const defaultIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  // nanospinner animates only when stdout is a terminal too (and not under CI or TERM=dumb); when
  // stdout is piped (`--json | jq`) the permanent lines alone are shown.
  ...(process.stderr.isTTY && process.stdout.isTTY && process.env.TERM !== "dumb" && !("CI" in process.env)
    ? { live: spinnerLine }
    : {}),
};

/** Run `supamanager <argv>`; resolves with the exit code. Never throws. */
export async function main(argv: string[], io: Io = defaultIo): Promise<ExitCode> {
  const json = argv.includes("--json");
  const fail = (err: CliError): ExitCode => {
    io.stderr(`supamanager: ${err.message}\n`);
    if (json) {
      io.stdout(
        `${JSON.stringify(
          {
            error: {
              message: err.message,
              exit_code: err.exitCode,
              ...(err.details.status !== undefined ? { status: err.details.status } : {}),
              ...(err.details.code !== undefined ? { code: err.details.code } : {}),
              ...(err.details.requestId !== undefined ? { request_id: err.details.requestId } : {}),
            },
          },
          null,
          2,
        )}\n`,
      );
    }
    return err.exitCode;
  };
  try {
    const r = resolve(argv, COMMANDS);
    if (r.kind === "help") {
      const text = r.command ? commandHelp(r.command) : groupHelp(r.path, COMMANDS, GROUPS);
      if (r.error) {
        io.stderr(`${text}\n\n`);
        return fail(new CliError(r.error, EXIT.usage));
      }
      io.stdout(`${text}\n`);
      return EXIT.ok;
    }
    const interval = Number(io.env.SUPAMANAGER_POLL_INTERVAL_MS);
    const out: Output = await r.command.run({
      input: r.input,
      env: io.env,
      configPath: configPath(io.env),
      hostname: hostname(),
      progress: (line) => io.stderr(`${line}\n`),
      ...(io.live ? { live: io.live } : {}),
      pollIntervalMs: Number.isFinite(interval) && interval > 0 ? interval : 1000,
    });
    if (r.input.json) io.stdout(`${JSON.stringify(out.data, null, 2)}\n`);
    else if (out.human) io.stdout(`${out.human}\n`);
    return out.exitCode ?? EXIT.ok;
  } catch (err) {
    if (err instanceof CliError) return fail(err);
    return fail(new CliError(`internal error: ${(err as Error)?.stack ?? String(err)}`, EXIT.unavailable));
  }
}
