import { type ErrorCode, statusForCode } from "@supamanager/shared";
import type { ZodError } from "zod";

/**
 * The one error type. Services throw it (usually through the helpers below); `app.onError`
 * turns it into `{ message, code, requestId }` with the status from the shared code list.
 */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = statusForCode(code);
  }
}

export const badRequest = (message: string) => new ApiError("bad_request", message);
export const unauthorized = (message = "Missing or invalid access token") => new ApiError("unauthorized", message);
export const forbidden = (message = "You do not have permission to do this") => new ApiError("forbidden", message);
export const notFound = (message: string) => new ApiError("not_found", message);
export const conflict = (message: string) => new ApiError("conflict", message);
export const rateLimited = (retryAfterSeconds: number) =>
  new ApiError("rate_limited", "Too many attempts, try again later", { "Retry-After": String(retryAfterSeconds) });

/** "body.name: Expected string" style message naming every failing path. */
export function zodMessage(error: ZodError, where: string): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const path = [where, ...i.path.map(String)].filter(Boolean).join(".");
      return `${path}: ${i.message}`;
    })
    .join("; ");
}

/** SQLSTATE classes and codes meaning "the database cannot serve right now", not "this request is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|57P0[1-4]|53300|53400)/;
/** Node socket errors of a database connection that went away or cannot be made. */
const UNAVAILABLE_ERRNO = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN"]);
const UNAVAILABLE_MESSAGE =
  /Connection terminated|connection (is )?(closed|ended)|Client has encountered a connection error|timeout exceeded when trying to connect|the database system is (starting up|shutting down|in recovery)|terminating connection due to administrator command|PGlite is closed/i;

/** The error, then its causes (DrizzleQueryError wraps the driver's error in `cause`), at most 5 deep. */
function causeChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e !== undefined && e !== null; i++) {
    chain.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return chain;
}

/**
 * Whether `err` says the control plane's own database is unreachable or restarting (a transient
 * state that answers 503 with Retry-After, not 500): connection refused or dropped, an admin
 * shutdown, "cannot connect now", too many connections.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const chain = causeChain(err);
  // Socket errnos count only under a database query (other clients, e.g. S3, have their own).
  const query = chain.some(
    (e) => e instanceof Error && (e.name === "DrizzleQueryError" || /^Failed query/.test(e.message)),
  );
  return chain.some((e) => {
    if (typeof e !== "object" || e === null) return false;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && UNAVAILABLE_SQLSTATE.test(code)) return true;
    if (query && typeof code === "string" && UNAVAILABLE_ERRNO.has(code)) return true;
    return typeof message === "string" && UNAVAILABLE_MESSAGE.test(message);
  });
}

/**
 * An error as a log line may carry it: name, message, SQLSTATE/errno code and stack, with the
 * query parameters drizzle appends to "Failed query" messages cut off and values PostgreSQL quotes
 * in its own messages (`invalid input syntax for type uuid: "…"`) elided — parameters hold token
 * hashes, emails and other request data that must never reach a log.
 */
export function loggableError(err: unknown): Record<string, unknown> {
  return (
    causeChain(err).reduceRight<Record<string, unknown> | undefined>((cause, e) => {
      if (!(e instanceof Error)) return { value: typeof e, ...(cause ? { cause } : {}) };
      const code = (e as { code?: unknown }).code;
      const message = e.message
        .replace(/\nparams:[\s\S]*$/, "\nparams: [omitted]")
        .replace(/(: |=\()"[^"\n]*"/g, '$1"[omitted]"')
        .slice(0, 2000);
      return {
        name: e.name,
        message,
        ...(typeof code === "string" ? { code } : {}),
        // Only the frames: a stack starts with the (unsanitised, possibly multi-line) message.
        ...(e.stack
          ? {
              stack: e.stack
                .split("\n")
                .filter((l) => /^\s+at /.test(l))
                .slice(0, 8)
                .join("\n"),
            }
          : {}),
        ...(cause ? { cause } : {}),
      };
    }, undefined) ?? { value: String(err) }
  );
}
