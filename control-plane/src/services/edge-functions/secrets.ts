import { EDGE_SECRETS_MAX } from "@supamanager/shared";
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { sha256Hex } from "../../crypto/encoding.js";
import { edgeFunctionSecrets } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { ApiError, badRequest } from "../../errors.js";
import { auditProjectChange } from "../audit/project-change.js";
import { deliver, functionsProject } from "./runtime.js";

/**
 * A project's function secrets (ADR 0032): each value encrypted with the SecretBox under
 * `project:<ref>:function-secret:<NAME>`, its SHA-256 kept beside it; the API returns names and
 * digests only. A change is recorded first, then the whole set is decrypted for this one request
 * and handed to the project's agent, which writes it into the functions volume and restarts the
 * runtime. Listing needs projects.read_secrets, changing sql.write (developer and up).
 */

/** Stored (encrypted, base64) bytes of all of a project's secrets: about 1 MiB of values. */
const STORED_BYTES_MAX = Math.ceil((1024 * 1024 * 4) / 3) + EDGE_SECRETS_MAX * 64;

const aad = (ref: string, name: string) => `project:${ref}:function-secret:${name}`;

export interface SecretView {
  name: string;
  /** SHA-256 hex of the value (the Management API's `value` for secrets). */
  digest: string;
  updatedAt: Date;
}

export async function listSecrets(ctx: AuthedContext, ref: string): Promise<SecretView[]> {
  const { project } = await functionsProject(ctx, ref, "projects.read_secrets");
  const rows = await ctx.db
    .select({
      name: edgeFunctionSecrets.name,
      digest: edgeFunctionSecrets.digest,
      updatedAt: edgeFunctionSecrets.updatedAt,
    })
    .from(edgeFunctionSecrets)
    .where(eq(edgeFunctionSecrets.projectRef, project.ref))
    .orderBy(asc(edgeFunctionSecrets.name));
  return rows;
}

/** Every secret of the project, decrypted: only to hand them to its runtime. */
async function allValues(ctx: AuthedContext, ref: string): Promise<Record<string, string>> {
  const rows = await ctx.db.select().from(edgeFunctionSecrets).where(eq(edgeFunctionSecrets.projectRef, ref));
  const out: Record<string, string> = {};
  for (const r of rows) out[r.name] = await ctx.deps.secretBox.decrypt(r.valueEncrypted, aad(ref, r.name));
  return out;
}

/** Hand the whole set to the runtime; a failure says the change is saved and how it gets there. */
async function deliverAll(ctx: AuthedContext, ref: string): Promise<void> {
  try {
    await deliver(ctx, ref, "sql.write", {
      method: "PUT",
      path: "/secrets",
      body: { secrets: await allValues(ctx, ref) },
    });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    throw new ApiError(
      err.code,
      `The secrets were saved but not yet handed to the project's edge runtime (${err.message}). They reach it with the next secrets change once the project is reachable.`,
    );
  }
}

function audit(ctx: AuthedContext, ref: string, action: string, names: string[]): Promise<void> {
  // Names only, never values.
  return auditProjectChange(ctx, ref, action, ref, { names: names.slice(0, 50), count: names.length });
}

/** Create or replace secrets (POST, bulk), then deliver the project's whole set. */
export async function setSecrets(ctx: AuthedContext, ref: string, items: { name: string; value: string }[]) {
  const { project } = await functionsProject(ctx, ref, "sql.write");
  const names = items.map((i) => i.name);
  if (new Set(names).size !== names.length) throw badRequest("a secret name appears twice in the request");
  const now = new Date(ctx.deps.clock.now());
  await ctx.db.transaction(async (tx) => {
    for (const { name, value } of items) {
      const values = {
        valueEncrypted: await ctx.deps.secretBox.encrypt(value, aad(project.ref, name)),
        digest: await sha256Hex(value),
        updatedAt: now,
      };
      await tx
        .insert(edgeFunctionSecrets)
        .values({ projectRef: project.ref, name, ...values })
        .onConflictDoUpdate({ target: [edgeFunctionSecrets.projectRef, edgeFunctionSecrets.name], set: values });
    }
    const [totals] = await tx
      .select({
        count: sql<number>`count(*)::int`,
        bytes: sql<number>`coalesce(sum(length(${edgeFunctionSecrets.valueEncrypted})), 0)::int`,
      })
      .from(edgeFunctionSecrets)
      .where(eq(edgeFunctionSecrets.projectRef, project.ref));
    if ((totals?.count ?? 0) > EDGE_SECRETS_MAX) {
      throw badRequest(`a project may have at most ${EDGE_SECRETS_MAX} function secrets`);
    }
    // The whole set travels to the agent in one frame: bounded (stored form ≈ 4/3 of the values).
    if ((totals?.bytes ?? 0) > STORED_BYTES_MAX) {
      throw badRequest("a project's function secrets may hold about 1 MiB together; remove some first");
    }
  });
  await audit(ctx, project.ref, "project.function_secrets.set", names);
  await deliverAll(ctx, project.ref);
}

/** Delete secrets by name (DELETE, bulk; unknown names are ignored), then deliver the rest. */
export async function deleteSecrets(ctx: AuthedContext, ref: string, names: string[]) {
  const { project } = await functionsProject(ctx, ref, "sql.write");
  await ctx.db
    .delete(edgeFunctionSecrets)
    .where(and(eq(edgeFunctionSecrets.projectRef, project.ref), inArray(edgeFunctionSecrets.name, names)));
  await audit(ctx, project.ref, "project.function_secrets.delete", names);
  await deliverAll(ctx, project.ref);
}
