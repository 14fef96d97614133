import type { Context } from "hono";
import type { z } from "zod";
import type { Config } from "../config.js";
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
  const nul = nulAt(raw, "body");
  if (nul) throw new ApiError("validation_failed", `${nul}: text may not contain NUL characters (\\u0000)`);
  return validated(schema, raw, "body");
}

/** Validate the query string (first value of each key). */
export function query<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  return validated(schema, c.req.query(), "query");
}

/**
 * Parse through the schema; a refinement that throws (e.g. `new URL()` on a value an earlier
 * check already refused) is a client mistake too: 400, never a 500.
 */
function validated<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.output<S> {
  let result: ReturnType<S["safeParse"]>;
  try {
    result = schema.safeParse(raw) as ReturnType<S["safeParse"]>;
  } catch {
    throw new ApiError("validation_failed", `${where}: a value is malformed and could not be checked`);
  }
  if (!result.success) throw new ApiError("validation_failed", zodMessage(result.error, where));
  return result.data as z.output<S>;
}

/** The path ("body.items.0.name") of the first string or key holding a NUL character, if any. */
export function nulAt(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === "string") return value.includes("\u0000") ? path : undefined;
  if (typeof value !== "object" || value === null || depth > 64) return undefined;
  for (const [k, v] of Object.entries(value)) {
    if (k.includes("\u0000")) return path;
    const found = nulAt(v, `${path}.${k}`, depth + 1);
    if (found) return found;
  }
  return undefined;
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

/**
 * A response body its builder already made field by field from named values (a mapper such as
 * orgProjectItem, never a row spread into it), so no column outside the contract can be in it:
 * parsed through the schema in tests and development, where a builder drifting from the contract
 * fails loudly, and passed as built in production (ADR 0042, addendum), where parsing a page of
 * 100 items cost more than building it. Use `shape` for anything built from whole rows or from
 * another service's answer.
 */
export function shapeBuilt<S extends z.ZodType>(env: Config["env"], schema: S, value: z.output<S>): z.output<S> {
  return env === "production" ? value : schema.parse(value);
}
