/**
 * The one list of error codes SupaManager answers with, and the HTTP status each maps to.
 * Every JSON error body is `{ message, code }` (plus `requestId` on HTTP).
 */
export const ERROR_STATUS = {
  bad_request: 400,
  validation_failed: 400,
  invalid_json: 400,
  unauthorized: 401,
  invalid_credentials: 400,
  invalid_grant: 400,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  gone: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
  internal: 500,
  not_implemented: 501,
  /** An upstream (a project's service, reached through its host agent) answered badly. */
  bad_gateway: 502,
  unavailable: 503,
  /** An upstream (a project's service, reached through its host agent) did not answer in time. */
  gateway_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

/** Status code for an error code; exhaustive by construction. */
export function statusForCode(code: ErrorCode): (typeof ERROR_STATUS)[ErrorCode] {
  return ERROR_STATUS[code];
}
