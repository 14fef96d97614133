import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { authed } from "../../lib/context.js";
import { jsonBody, param, shape } from "../../lib/validate.js";
import {
  createTarget,
  deleteTarget,
  listTargets,
  ownerOf,
  type TargetInput,
  type TargetPatch,
  type TargetScope,
  testTarget,
  updateTarget,
} from "../../services/backups/index.js";
import type { TargetRow } from "../../services/backups/targets.js";
import { orgSlug } from "./organizations/params.js";

/**
 * Backup storage targets (docs/backups.md): an organization's (owner/administrator) under
 * /platform/organizations/{slug}/backup-targets, the instance's (instance admin) at
 * /platform/backup-target. The secret access key is write-only: no answer ever carries it.
 */

const Endpoint = z
  .url({ protocol: /^https?$/, error: "endpoint must be an http(s) URL such as https://s3.example.com" })
  .max(2048)
  .refine((u) => {
    // Runs even when the URL check above failed (zod 4 goes on): never throw on a malformed value.
    if (!URL.canParse(u)) return true;
    const url = new URL(u);
    return url.username === "" && url.password === "" && url.search === "" && url.hash === "";
  }, "endpoint must not carry credentials, a query or a fragment");
const Bucket = z
  .string({ error: "bucket is required" })
  .regex(
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    "bucket must be an S3 bucket name (3-63 lowercase letters, digits, . and -)",
  );
const Prefix = z
  .string()
  .max(512)
  .regex(/^[A-Za-z0-9!_.*'()/-]*$/, "prefix may hold letters, digits and !_.*'()/- only")
  .transform((p) => p.replace(/^\/+|\/+$/g, ""))
  .refine((p) => !p.split("/").some((s) => s === "." || s === ".."), "prefix must not contain . or .. segments");
const Region = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "region must look like us-east-1");
const AccessKeyId = z
  .string({ error: "access_key_id is required" })
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, "access_key_id must be printable without spaces");
const SecretAccessKey = z
  .string({ error: "secret_access_key is required" })
  .min(1, "secret_access_key must not be empty")
  .max(1024);

export const CreateTargetBody = z.strictObject({
  endpoint: Endpoint.nullable().default(null),
  bucket: Bucket,
  prefix: Prefix.default(""),
  region: Region.default("us-east-1"),
  force_path_style: z.boolean().default(false),
  access_key_id: AccessKeyId,
  secret_access_key: SecretAccessKey,
  client_side_encryption: z.boolean().default(false),
});

export const UpdateTargetBody = z.strictObject({
  endpoint: Endpoint.nullable().optional(),
  bucket: Bucket.optional(),
  prefix: Prefix.optional(),
  region: Region.optional(),
  force_path_style: z.boolean().optional(),
  access_key_id: AccessKeyId.optional(),
  secret_access_key: SecretAccessKey.optional(),
  client_side_encryption: z.boolean().optional(),
});

const TargetResponse = z.object({
  id: z.string(),
  scope: z.enum(["organization", "instance"]),
  endpoint: z.string().nullable(),
  bucket: z.string(),
  prefix: z.string(),
  region: z.string(),
  force_path_style: z.boolean(),
  access_key_id: z.string(),
  client_side_encryption: z.boolean(),
  inserted_at: z.string(),
  updated_at: z.string(),
});

function view(row: TargetRow) {
  return shape(TargetResponse, {
    id: row.id,
    scope: row.orgId === null ? "instance" : "organization",
    endpoint: row.endpoint,
    bucket: row.bucket,
    prefix: row.prefix,
    region: row.region,
    force_path_style: row.forcePathStyle,
    access_key_id: row.accessKeyId,
    client_side_encryption: row.encryptionEnabled,
    inserted_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  });
}

/** The service's names for a create body (every field) or an update body (the fields sent). */
function toInput(b: z.output<typeof CreateTargetBody>): TargetInput;
function toInput(b: z.output<typeof UpdateTargetBody>): TargetPatch;
function toInput(b: z.output<typeof UpdateTargetBody>): TargetPatch {
  return {
    endpoint: b.endpoint,
    bucket: b.bucket,
    prefix: b.prefix,
    region: b.region,
    forcePathStyle: b.force_path_style,
    accessKeyId: b.access_key_id,
    secretAccessKey: b.secret_access_key,
    clientSideEncryption: b.client_side_encryption,
  };
}

const orgScope = (c: Context<AppEnv>): TargetScope => ({ kind: "org", slug: orgSlug(c) });
const INSTANCE: TargetScope = { kind: "instance" };
const targetId = (c: Context<AppEnv>) => param(c, "id", z.string().regex(/^bkt_[A-Za-z0-9]{1,40}$/), "Backup target");

// Organization targets. Authorization (membership, role) runs before the body is read, so a
// stranger learns nothing from validation messages.

export async function listOrgTargets(c: Context<AppEnv>): Promise<Response> {
  return c.json((await listTargets(authed(c), orgScope(c))).map(view));
}

export async function createOrgTarget(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const scope = orgScope(c);
  await ownerOf(ctx, scope, true); // membership and role first (404 for strangers, 403 below admin)
  const body = await jsonBody(c, CreateTargetBody);
  return c.json(view(await createTarget(ctx, scope, toInput(body))), 201);
}

export async function updateOrgTarget(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const scope = orgScope(c);
  await ownerOf(ctx, scope, true);
  const id = targetId(c);
  const body = await jsonBody(c, UpdateTargetBody);
  return c.json(view(await updateTarget(ctx, scope, id, toInput(body))));
}

export async function deleteOrgTarget(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const scope = orgScope(c);
  await ownerOf(ctx, scope, true);
  await deleteTarget(ctx, scope, targetId(c));
  return c.body(null, 204);
}

export async function testOrgTarget(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  const scope = orgScope(c);
  await ownerOf(ctx, scope, true);
  await testTarget(ctx, scope, targetId(c));
  return c.json({ ok: true, message: "Wrote and deleted a test object" });
}

// The instance's target (instance admin only).

export async function getInstanceTarget(c: Context<AppEnv>): Promise<Response> {
  const [row] = await listTargets(authed(c), INSTANCE);
  return c.json({ target: row ? view(row) : null });
}

/** PUT: create the instance's target, or replace its settings (the secret may be omitted to keep it). */
export async function putInstanceTarget(c: Context<AppEnv>): Promise<Response> {
  const ctx = authed(c);
  await ownerOf(ctx, INSTANCE, true);
  const [existing] = await listTargets(ctx, INSTANCE);
  if (existing) {
    const body = await jsonBody(c, UpdateTargetBody);
    return c.json({ target: view(await updateTarget(ctx, INSTANCE, null, toInput(body))) });
  }
  const body = await jsonBody(c, CreateTargetBody);
  return c.json({ target: view(await createTarget(ctx, INSTANCE, toInput(body))) }, 201);
}

export async function deleteInstanceTarget(c: Context<AppEnv>): Promise<Response> {
  await deleteTarget(authed(c), INSTANCE, null);
  return c.body(null, 204);
}

export async function testInstanceTarget(c: Context<AppEnv>): Promise<Response> {
  await testTarget(authed(c), INSTANCE, null);
  return c.json({ ok: true, message: "Wrote and deleted a test object" });
}
