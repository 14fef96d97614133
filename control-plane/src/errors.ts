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
