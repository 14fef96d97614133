import { z } from "zod";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { runQuery } from "../pg-meta/query.js";
import { lintSql } from "./lint-sql.js";

/** One finding, in Studio's `Lint` shape (GET /platform/projects/{ref}/run-lints). */
export const Lint = z.object({
  name: z.string(),
  title: z.string(),
  level: z.enum(["ERROR", "WARN", "INFO"]),
  facing: z.enum(["EXTERNAL", "INTERNAL"]),
  categories: z.array(z.enum(["SECURITY", "PERFORMANCE"])),
  description: z.string(),
  detail: z.string(),
  remediation: z.string(),
  metadata: z.record(z.string(), z.unknown()),
  cache_key: z.string(),
});
export type Lint = z.infer<typeof Lint>;

/**
 * Run SupaManager's lints (lint-sql.ts) against the project's database through its postgres-meta,
 * over the host agent (the same path and rules as Studio's SQL editor: any member, read_only
 * members as the read-only role). `exposedSchemas` is what the project's Data API serves.
 */
export async function runLints(ctx: AuthedContext, ref: string, exposedSchemas: readonly string[]): Promise<Lint[]> {
  const answer = await runQuery(ctx, ref, { query: lintSql(exposedSchemas) });
  if (!answer.ok) {
    // Our own catalog query failed: the database is not what we expect, not the caller's mistake.
    const message = typeof answer.error.message === "string" ? answer.error.message : "unknown error";
    throw new ApiError("bad_gateway", `The database lints could not run on this project: ${message}`);
  }
  const rows = z.array(Lint).safeParse(answer.rows);
  if (!rows.success) throw new ApiError("bad_gateway", "The database lints answered rows of an unexpected shape");
  return rows.data;
}
