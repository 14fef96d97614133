import { randomBytes } from "node:crypto";
import { prefixedId } from "@supamanager/shared";
import { and, eq, inArray, isNull } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { backups, backupTargets } from "../../db/schema.js";
import type { AppDeps, AuthedContext } from "../../deps.js";
import { ApiError, conflict, forbidden, notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { orgForMember } from "../organizations/access.js";
import { type EndpointTarget, endpointRefusal } from "./endpoint-guard.js";
import { EndpointRefused, joinKey, ObjectStore, S3Failure, type S3Location } from "./s3.js";

/**
 * Backup targets (ADR 0015): S3-compatible storage, one per organization and one for the whole
 * instance. Organizations without their own target back up to the instance's. The secret key
 * and the client-side encryption key are stored encrypted, each with an AAD naming the target,
 * so a ciphertext copied to another row does not decrypt.
 */

export type TargetRow = typeof backupTargets.$inferSelect;

export const secretAad = (targetId: string) => `backup-target:${targetId}:secret_access_key`;
export const encryptionKeyAad = (targetId: string) => `backup-target:${targetId}:encryption_key`;

export interface TargetInput {
  endpoint: string | null;
  bucket: string;
  prefix: string;
  region: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  clientSideEncryption: boolean;
}

export type TargetPatch = Partial<TargetInput>;

/** Who owns a target: an organization (by slug) or the instance. */
export type TargetScope = { kind: "org"; slug: string } | { kind: "instance" };

interface Owner {
  orgId: number | null;
}

/** Who may see (`write` false) or change the scope's target; 404 for strangers, 403 for roles below. */
export async function ownerOf(ctx: AuthedContext, scope: TargetScope, write: boolean): Promise<Owner> {
  if (scope.kind === "instance") {
    if (!ctx.actor.isInstanceAdmin) throw forbidden("Only the instance admin can manage the instance's backup target");
    return { orgId: null };
  }
  const { org } = await orgForMember(ctx, scope.slug, write ? "backups.admin" : "backups.read");
  return { orgId: org.id };
}

const ownerWhere = (orgId: number | null) =>
  orgId === null ? isNull(backupTargets.orgId) : eq(backupTargets.orgId, orgId);

/** The target of an organization or of the instance (null when none is configured). */
export async function targetOf(db: Executor, orgId: number | null): Promise<TargetRow | null> {
  const [row] = await db.select().from(backupTargets).where(ownerWhere(orgId)).limit(1);
  return row ?? null;
}

/** Where an organization's backups go: its own target, else the instance's, else null. */
export async function targetForOrg(db: Executor, orgId: number): Promise<TargetRow | null> {
  return (await targetOf(db, orgId)) ?? (await targetOf(db, null));
}

export async function listTargets(ctx: AuthedContext, scope: TargetScope): Promise<TargetRow[]> {
  const owner = await ownerOf(ctx, scope, false);
  const row = await targetOf(ctx.db, owner.orgId);
  return row ? [row] : [];
}

/**
 * Whether the control plane must check where an endpoint points before calling it: organization
 * targets, unless the operator allows private endpoints. The instance's target is the instance
 * admin's own configuration, like the control plane's other settings.
 */
function endpointChecked(deps: AppDeps, orgId: number | null): boolean {
  return orgId !== null && deps.config.backups.privateEndpoints === "deny";
}

/** 400 when an organization's target would point the control plane at a non-public address. */
async function assertEndpointAllowed(deps: AppDeps, orgId: number | null, target: EndpointTarget): Promise<void> {
  if (!endpointChecked(deps, orgId)) return;
  const refusal = await endpointRefusal(target);
  if (refusal) throw new ApiError("bad_request", refusal);
}

function auditScope(owner: Owner) {
  return { orgId: owner.orgId };
}

/** Only what is safe to audit: never the secret or the keys. */
function auditDetails(row: TargetRow, changed?: string[]) {
  return {
    endpoint: row.endpoint,
    bucket: row.bucket,
    prefix: row.prefix,
    region: row.region,
    client_side_encryption: row.encryptionEnabled,
    ...(changed ? { changed } : {}),
  };
}

export async function createTarget(ctx: AuthedContext, scope: TargetScope, input: TargetInput): Promise<TargetRow> {
  const owner = await ownerOf(ctx, scope, true);
  await assertEndpointAllowed(ctx.deps, owner.orgId, input);
  const id = prefixedId("bkt");
  const now = new Date(ctx.deps.clock.now());
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(backupTargets)
      .values({
        id,
        orgId: owner.orgId,
        endpoint: input.endpoint,
        bucket: input.bucket,
        prefix: input.prefix,
        region: input.region,
        forcePathStyle: input.forcePathStyle,
        accessKeyId: input.accessKeyId,
        secretAccessKeyEncrypted: await ctx.deps.secretBox.encrypt(input.secretAccessKey, secretAad(id)),
        encryptionEnabled: input.clientSideEncryption,
        encryptionKeyEncrypted: input.clientSideEncryption ? await newEncryptionKey(ctx.deps, id) : null,
        createdAt: now,
        updatedAt: now,
      })
      .onConflictDoNothing()
      .returning();
    if (!row) {
      throw conflict(
        owner.orgId === null
          ? "The instance already has a backup target; change or delete it"
          : "This organization already has a backup target; change or delete it",
      );
    }
    await recordAudit(tx, ctx.meta, {
      action: "backup_target.create",
      outcome: "success",
      actor: ctx.actor,
      ...auditScope(owner),
      target: id,
      details: auditDetails(row),
    });
    return row;
  });
}

async function newEncryptionKey(deps: AppDeps, targetId: string): Promise<string> {
  return deps.secretBox.encrypt(randomBytes(32).toString("base64"), encryptionKeyAad(targetId));
}

async function ownedTarget(ctx: AuthedContext, owner: Owner, id: string): Promise<TargetRow> {
  const [row] = await ctx.db
    .select()
    .from(backupTargets)
    .where(and(eq(backupTargets.id, id), ownerWhere(owner.orgId)))
    .limit(1);
  if (!row) throw notFound(`Backup target ${id} not found`);
  return row;
}

/** The scope's target: by id for organizations, the one row for the instance. */
async function scopedTarget(ctx: AuthedContext, scope: TargetScope, id: string | null, write: boolean) {
  const owner = await ownerOf(ctx, scope, write);
  if (id !== null) return { owner, row: await ownedTarget(ctx, owner, id) };
  const row = await targetOf(ctx.db, owner.orgId);
  if (!row) throw notFound("No backup target is configured");
  return { owner, row };
}

export async function updateTarget(
  ctx: AuthedContext,
  scope: TargetScope,
  id: string | null,
  patch: TargetPatch,
): Promise<TargetRow> {
  const { owner, row } = await scopedTarget(ctx, scope, id, true);
  await assertEndpointAllowed(ctx.deps, owner.orgId, {
    endpoint: patch.endpoint !== undefined ? patch.endpoint : row.endpoint,
    bucket: patch.bucket ?? row.bucket,
    forcePathStyle: patch.forcePathStyle ?? row.forcePathStyle,
  });
  const changed = Object.entries(patch)
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k);
  const set: Partial<typeof backupTargets.$inferInsert> = {
    ...(patch.endpoint !== undefined ? { endpoint: patch.endpoint } : {}),
    ...(patch.bucket !== undefined ? { bucket: patch.bucket } : {}),
    ...(patch.prefix !== undefined ? { prefix: patch.prefix } : {}),
    ...(patch.region !== undefined ? { region: patch.region } : {}),
    ...(patch.forcePathStyle !== undefined ? { forcePathStyle: patch.forcePathStyle } : {}),
    ...(patch.accessKeyId !== undefined ? { accessKeyId: patch.accessKeyId } : {}),
    ...(patch.secretAccessKey !== undefined
      ? { secretAccessKeyEncrypted: await ctx.deps.secretBox.encrypt(patch.secretAccessKey, secretAad(row.id)) }
      : {}),
    ...(patch.clientSideEncryption !== undefined ? { encryptionEnabled: patch.clientSideEncryption } : {}),
    // The key is made once and kept: backups encrypted with it must stay restorable after
    // encryption is switched off and on again.
    ...(patch.clientSideEncryption && !row.encryptionKeyEncrypted
      ? { encryptionKeyEncrypted: await newEncryptionKey(ctx.deps, row.id) }
      : {}),
    updatedAt: new Date(ctx.deps.clock.now()),
  };
  return ctx.db.transaction(async (tx) => {
    const [updated] = await tx.update(backupTargets).set(set).where(eq(backupTargets.id, row.id)).returning();
    if (!updated) throw notFound(`Backup target ${row.id} not found`);
    await recordAudit(tx, ctx.meta, {
      action: "backup_target.update",
      outcome: "success",
      actor: ctx.actor,
      ...auditScope(owner),
      target: row.id,
      details: auditDetails(updated, changed),
    });
    return updated;
  });
}

/**
 * Delete a target. Refused while a backup to it is in flight. Finished backups keep their rows
 * (target_id becomes null) but can no longer be restored or downloaded: the objects stay in the
 * bucket, SupaManager just no longer holds the credentials to reach them.
 */
export async function deleteTarget(ctx: AuthedContext, scope: TargetScope, id: string | null): Promise<void> {
  const { owner, row } = await scopedTarget(ctx, scope, id, true);
  await ctx.db.transaction(async (tx) => {
    const [busy] = await tx
      .select({ id: backups.id })
      .from(backups)
      .where(and(eq(backups.targetId, row.id), inArray(backups.status, ["PENDING", "RUNNING"])))
      .limit(1);
    if (busy) throw conflict(`Backup ${busy.id} is being written to this target; delete it when it has finished`);
    await tx.delete(backupTargets).where(eq(backupTargets.id, row.id));
    await recordAudit(tx, ctx.meta, {
      action: "backup_target.delete",
      outcome: "success",
      actor: ctx.actor,
      ...auditScope(owner),
      target: row.id,
      details: auditDetails(row),
    });
  });
}

/** Decrypt what the control plane needs to talk to a target's storage. */
export async function locationOf(deps: AppDeps, row: TargetRow): Promise<S3Location> {
  return {
    endpoint: row.endpoint,
    region: row.region,
    bucket: row.bucket,
    forcePathStyle: row.forcePathStyle,
    accessKeyId: row.accessKeyId,
    secretAccessKey: await deps.secretBox.decrypt(row.secretAccessKeyEncrypted, secretAad(row.id)),
  };
}

/**
 * The one way the control plane reaches a target's storage (tests, backups, restores, retention).
 * For organization targets the endpoint is checked again right before each store's first request,
 * so a host name whose DNS answer changed after the target was saved is caught at use
 * (endpoint-guard.ts; the remaining gap between that check and the SDK's own lookup is in
 * docs/security.md).
 */
export async function storeFor(deps: AppDeps, row: TargetRow): Promise<ObjectStore> {
  const guard = endpointChecked(deps, row.orgId) ? () => endpointRefusal(row) : undefined;
  return new ObjectStore(await locationOf(deps, row), guard);
}

/** The target's client-side encryption key (base64), when it has one. */
export async function encryptionKeyOf(deps: AppDeps, row: TargetRow): Promise<string | null> {
  if (!row.encryptionKeyEncrypted) return null;
  return deps.secretBox.decrypt(row.encryptionKeyEncrypted, encryptionKeyAad(row.id));
}

/** A user-facing sentence for a failed S3 call: the operation and S3's error code, never a credential. */
export function describeS3Failure(row: Pick<TargetRow, "bucket" | "prefix">, err: S3Failure): string {
  // Refused by SupaManager, not by the storage: the refusal is the whole sentence.
  if (err instanceof EndpointRefused) return err.message;
  const where = `s3://${row.bucket}/${row.prefix}`;
  const hint: Record<string, string> = {
    SignatureDoesNotMatch: "the secret access key is wrong",
    InvalidAccessKeyId: "the access key id is unknown to the storage",
    AccessDenied: "the credentials may not write there",
    NoSuchBucket: "the bucket does not exist",
    ECONNREFUSED: "nothing answers at the endpoint",
    ENOTFOUND: "the endpoint's host name does not resolve",
  };
  return `Backup storage ${where} refused ${err.operation}: ${err.code}${err.httpStatus ? ` (HTTP ${err.httpStatus})` : ""}${hint[err.code] ? ` — ${hint[err.code]}` : ""}`;
}

/**
 * Test a target: put and delete a small object under its prefix. 400 with S3's error code on
 * failure (the audit row records the outcome either way).
 */
export async function testTarget(ctx: AuthedContext, scope: TargetScope, id: string | null): Promise<void> {
  const { owner, row } = await scopedTarget(ctx, scope, id, true);
  const store = await storeFor(ctx.deps, row);
  let failure: S3Failure | null = null;
  try {
    await store.probe(joinKey(row.prefix, `.supamanager-connection-test-${prefixedId("t", 12)}`));
  } catch (err) {
    if (!(err instanceof S3Failure)) throw err;
    failure = err;
  } finally {
    store.close();
  }
  await recordAudit(ctx.db, ctx.meta, {
    action: "backup_target.test",
    outcome: failure ? "failure" : "success",
    actor: ctx.actor,
    ...auditScope(owner),
    target: row.id,
    details: failure ? { code: failure.code, operation: failure.operation } : {},
  });
  if (failure) throw new ApiError("bad_request", describeS3Failure(row, failure));
}
