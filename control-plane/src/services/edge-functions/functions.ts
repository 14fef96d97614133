import {
  EDGE_FUNCTION_MAX_BYTES,
  EDGE_FUNCTION_MAX_FILES,
  FUNCTION_FILE_PATH,
  FUNCTION_SLUG,
} from "@supamanager/shared";
import { and, asc, eq, sql } from "drizzle-orm";
import { edgeFunctions } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest, notFound } from "../../errors.js";
import { auditProjectChange } from "../audit/project-change.js";
import { deliver, functionsProject } from "./runtime.js";

/**
 * A project's Edge Functions (ADR 0032): deployed through the Management API's multipart deploy
 * (Studio's editor, `supabase functions deploy --use-api`), kept in the control plane (files,
 * metadata, version) and delivered by the project's agent into its functions volume. A deploy
 * reaches the runtime first and is recorded after, so a failed delivery changes nothing.
 * Reading needs projects.read (any member); deploying, changing and deleting sql.write.
 */

export type FunctionRow = typeof edgeFunctions.$inferSelect;

export interface DeployFile {
  /** The path the client gave (its form-data filename), checked and normalised here. */
  name: string;
  content: Uint8Array;
}

export interface DeployInput {
  slug: string;
  name?: string | undefined;
  entrypointPath: string;
  importMapPath?: string | undefined;
  verifyJwt?: boolean | undefined;
  files: DeployFile[];
}

/** A client's file name or metadata path → our relative path (`file://`, leading `/` and `./` dropped). */
export function normalisePath(raw: string, what: string): string {
  let p = raw.trim();
  if (p.startsWith("file://")) {
    try {
      p = decodeURIComponent(new URL(p).pathname);
    } catch {
      throw badRequest(`${what}: ${JSON.stringify(raw.slice(0, 100))} is not a valid file URL`);
    }
  }
  p = p.replace(/\\/g, "/").replace(/^\/+/, "");
  while (p.startsWith("./")) p = p.slice(2);
  if (p.length === 0 || p.length > 255 || !FUNCTION_FILE_PATH.test(p)) {
    throw badRequest(
      `${what}: ${JSON.stringify(raw.slice(0, 100))} is not a relative file path inside the function (no "..", letters, digits and . _ - @ + ~ only)`,
    );
  }
  return p;
}

async function digest(files: { path: string; content: Uint8Array }[]): Promise<string> {
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    parts.push(enc.encode(`${f.path}\0${f.content.byteLength}\0`), f.content);
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.byteLength;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

const toBase64 = (bytes: Uint8Array) => {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};
export const fromBase64 = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

/** Check a deploy's files (count, size, paths, entrypoint) and put them in stored form. */
export function checkDeploy(input: DeployInput): {
  entrypoint: string;
  importMap: string | null;
  files: { path: string; content: Uint8Array }[];
} {
  if (!FUNCTION_SLUG.test(input.slug)) {
    throw badRequest("slug must start with a letter and hold only letters, digits, - and _ (at most 100)");
  }
  if (input.files.length === 0) throw badRequest("a deploy needs at least one file (form field `file`)");
  if (input.files.length > EDGE_FUNCTION_MAX_FILES) {
    throw badRequest(`a function may have at most ${EDGE_FUNCTION_MAX_FILES} files`);
  }
  const files = new Map<string, Uint8Array>();
  let bytes = 0;
  for (const f of input.files) {
    const path = normalisePath(f.name, "file");
    if (files.has(path)) throw badRequest(`file ${JSON.stringify(path)} is sent twice`);
    files.set(path, f.content);
    bytes += f.content.byteLength;
  }
  if (bytes > EDGE_FUNCTION_MAX_BYTES) {
    throw badRequest(`a function's files may hold at most ${EDGE_FUNCTION_MAX_BYTES} bytes (got ${bytes})`);
  }
  const entrypoint = normalisePath(input.entrypointPath, "metadata.entrypoint_path");
  if (!files.has(entrypoint)) {
    throw badRequest(`metadata.entrypoint_path ${JSON.stringify(entrypoint)} is not among the uploaded files`);
  }
  const importMap = input.importMapPath ? normalisePath(input.importMapPath, "metadata.import_map_path") : null;
  if (importMap !== null && !files.has(importMap)) {
    throw badRequest(`metadata.import_map_path ${JSON.stringify(importMap)} is not among the uploaded files`);
  }
  return { entrypoint, importMap, files: [...files].map(([path, content]) => ({ path, content })) };
}

const audit = auditProjectChange;

export async function listFunctions(ctx: AuthedContext, ref: string): Promise<FunctionRow[]> {
  const { project } = await functionsProject(ctx, ref, "projects.read");
  return ctx.db
    .select()
    .from(edgeFunctions)
    .where(eq(edgeFunctions.projectRef, project.ref))
    .orderBy(asc(edgeFunctions.slug));
}

export async function getFunction(ctx: AuthedContext, ref: string, slug: string): Promise<FunctionRow> {
  const { project } = await functionsProject(ctx, ref, "projects.read");
  const [row] = await ctx.db
    .select()
    .from(edgeFunctions)
    .where(and(eq(edgeFunctions.projectRef, project.ref), eq(edgeFunctions.slug, slug)))
    .limit(1);
  if (!row) throw notFound(`Function ${slug} not found`);
  return row;
}

/** A function's files, decoded (GET …/body). */
export function functionFiles(row: FunctionRow): { path: string; content: Uint8Array }[] {
  return row.files.map((f) => ({ path: f.path, content: fromBase64(f.content) }));
}

/** Deploy (create or replace) a function: checked, delivered to the runtime, then recorded (version + 1). */
export async function deployFunction(ctx: AuthedContext, ref: string, input: DeployInput): Promise<FunctionRow> {
  const { project } = await functionsProject(ctx, ref, "sql.write");
  const checked = checkDeploy(input);
  const stored = checked.files.map((f) => ({ path: f.path, content: toBase64(f.content) }));
  const [existing] = await ctx.db
    .select({ verifyJwt: edgeFunctions.verifyJwt, name: edgeFunctions.name })
    .from(edgeFunctions)
    .where(and(eq(edgeFunctions.projectRef, project.ref), eq(edgeFunctions.slug, input.slug)))
    .limit(1);
  const verifyJwt = input.verifyJwt ?? existing?.verifyJwt ?? true;
  const name = input.name?.trim() || existing?.name || input.slug;
  await deliver(ctx, project.ref, "sql.write", {
    method: "PUT",
    path: `/functions/${input.slug}`,
    body: { entrypoint: checked.entrypoint, verifyJwt, files: stored },
  });
  const values = {
    name,
    verifyJwt,
    entrypointPath: checked.entrypoint,
    importMapPath: checked.importMap,
    files: stored,
    sha256: await digest(checked.files),
    updatedAt: new Date(ctx.deps.clock.now()),
  };
  const [row] = await ctx.db
    .insert(edgeFunctions)
    .values({ projectRef: project.ref, slug: input.slug, ...values })
    .onConflictDoUpdate({
      target: [edgeFunctions.projectRef, edgeFunctions.slug],
      set: { ...values, version: sql`${edgeFunctions.version} + 1` },
    })
    .returning();
  if (!row) throw new Error("deploy: no row returned");
  await audit(ctx, project.ref, "project.edge_function.deploy", input.slug, {
    version: row.version,
    files: stored.length,
    verify_jwt: verifyJwt,
  });
  return row;
}

/** Change a function's name or verify_jwt (PATCH; verify_jwt reaches the runtime with its files). */
export async function updateFunction(
  ctx: AuthedContext,
  ref: string,
  slug: string,
  patch: { name?: string | undefined; verifyJwt?: boolean | undefined },
): Promise<FunctionRow> {
  await functionsProject(ctx, ref, "sql.write");
  const current = await getFunction(ctx, ref, slug);
  const verifyJwt = patch.verifyJwt ?? current.verifyJwt;
  if (verifyJwt !== current.verifyJwt) {
    await deliver(ctx, ref, "sql.write", {
      method: "PUT",
      path: `/functions/${slug}`,
      body: { entrypoint: current.entrypointPath, verifyJwt, files: current.files },
    });
  }
  const [row] = await ctx.db
    .update(edgeFunctions)
    .set({
      name: patch.name?.trim() || current.name,
      verifyJwt,
      updatedAt: new Date(ctx.deps.clock.now()),
    })
    .where(eq(edgeFunctions.id, current.id))
    .returning();
  if (!row) throw notFound(`Function ${slug} not found`);
  await audit(ctx, ref, "project.edge_function.update", slug, { verify_jwt: verifyJwt });
  return row;
}

/** Delete a function: removed from the runtime, then from the record. */
export async function deleteFunction(ctx: AuthedContext, ref: string, slug: string): Promise<void> {
  await functionsProject(ctx, ref, "sql.write");
  const current = await getFunction(ctx, ref, slug);
  await deliver(ctx, ref, "sql.write", { method: "DELETE", path: `/functions/${slug}`, body: {} });
  await ctx.db.delete(edgeFunctions).where(eq(edgeFunctions.id, current.id));
  await audit(ctx, ref, "project.edge_function.delete", slug);
}
