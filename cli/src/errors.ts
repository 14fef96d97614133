/**
 * Exit codes of `supamanager` (documented in docs/cli.md). Scripts branch on them, so they never
 * change meaning.
 */
export const EXIT = {
  /** The command did what it was asked. */
  ok: 0,
  /** Bad usage: unknown command or option, missing argument, invalid value, not logged in. */
  usage: 1,
  /** The control plane refused the request (a 4xx answer: bad token, not allowed, not found, conflict). */
  refused: 2,
  /** The control plane could not be reached, timed out, or failed (5xx or an unexpected answer). */
  unavailable: 3,
  /** A long operation (`--wait`) ended in a failure status or did not finish in time. */
  failed: 4,
  /** Reserved: a command that exists but the control plane does not offer yet (none today). */
  notAvailable: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface ErrorDetails {
  /** HTTP status of the API answer, when there was one. */
  status?: number;
  /** The API's error code (`{message, code, requestId}`). */
  code?: string;
  requestId?: string;
}

/** An error the CLI reports with its message (never a stack trace) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
    this.name = "CliError";
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);
