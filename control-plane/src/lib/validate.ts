import type { Context } from "hono";
import type { z } from "zod";
import { ApiError, zodMessage } from "../errors.js";

/**
 * Read and validate a JSON body. Bad JSON, a wrong content type and schema failures are all
 * 400s with a message that names the failing field; nothing reaches a service unvalidated.
 */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const type = c.req.header("content-type") ?? "";
  let raw: unknown;
  const text = await c.req.text();
  if (text.length === 0) {
    raw = {};
  } else {
    if (type !== "" && !/^application\/(?:[\w.+-]*\+)?json\b/i.test(type) && !/^text\/plain\b/i.test(type)) {
      throw new ApiError("unsupported_media_type", "Request body must be JSON (Content-Type: application/json)");
    }
    try {
      raw = JSON.parse(text);
    } catch {
      throw new ApiError("invalid_json", "Request body is not valid JSON");
    }
  }
  const result = schema.safeParse(raw);
  if (!result.success) throw new ApiError("validation_failed", zodMessage(result.error, "body"));
  return result.data;
}

/** Validate the query string (first value of each key). */
export function query<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const result = schema.safeParse(c.req.query());
  if (!result.success) throw new ApiError("validation_failed", zodMessage(result.error, "query"));
  return result.data;
}

/** Validate one path parameter; a malformed id is "not found" rather than a 400 to avoid probing. */
export function param<S extends z.ZodType>(c: Context, name: string, schema: S, what: string): z.output<S> {
  const result = schema.safeParse(c.req.param(name));
  if (!result.success) throw new ApiError("not_found", `${what} not found`);
  return result.data;
}

/**
 * Build a response body through its schema, so a column that is not in the contract
 * (a password hash, a secret) can never leak.
 */
export function shape<S extends z.ZodType>(schema: S, value: z.input<S>): z.output<S> {
  return schema.parse(value);
}
