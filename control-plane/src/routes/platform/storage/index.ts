import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param } from "../../../lib/validate.js";
import { projectForMember } from "../../../services/organizations/access.js";
import type { Action } from "../../../services/permissions/matrix.js";
import {
  copyObject,
  createBucket,
  deleteBucket,
  deleteObjects,
  downloadObject,
  emptyBucket,
  getBucket,
  listBuckets,
  listObjects,
  moveObject,
  publicObjectUrl,
  signObject,
  updateBucket,
} from "../../../services/storage/buckets.js";
import { changeStorageCredentials, storageCredentials } from "../../../services/storage/config.js";
import { RefParam } from "../projects/schemas.js";

/**
 * Studio's Storage pages (platform.d.ts: /platform/storage/{ref}/buckets, /buckets/{id},
 * /buckets/{id}/empty, /buckets/{id}/objects, /buckets/{id}/objects/list) through the project's
 * Storage API (services/storage). Membership and role come before any validation.
 */

async function refOf(c: Context<AppEnv>, action: Action): Promise<string> {
  const ref = param(c, "ref", RefParam, "Project");
  await projectForMember(authed(c), ref, action);
  return ref;
}
const bucketOf = (c: Context<AppEnv>) => param(c, "id", z.string().regex(/^[A-Za-z0-9_.\- ]{1,100}$/), "Bucket");

const Settings = z.object({
  public: z.boolean().optional(),
  file_size_limit: z
    .union([z.number().int().nonnegative(), z.string().max(32)])
    .nullable()
    .optional(),
  allowed_mime_types: z.array(z.string().max(255)).max(100).nullable().optional(),
});
const CreateBody = Settings.extend({
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.\- ]{1,100}$/, "a bucket name is letters, digits, spaces, dots, dashes and underscores"),
});
const ListBody = z.object({
  path: z.string().max(1024).default(""),
  options: z
    .object({
      limit: z.number().int().min(1).max(1000).optional(),
      offset: z.number().int().min(0).optional(),
      search: z.string().max(1024).optional(),
      sortBy: z.object({ column: z.string().max(64), order: z.string().max(8) }).optional(),
    })
    .optional(),
});
const DeleteObjectsBody = z.object({ paths: z.array(z.string().min(1).max(1024)).min(1).max(1000) });
/** An object path inside a bucket: relative, no `.`/`..` segments, no NUL or line breaks. */
const ObjectPath = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.startsWith("/") && !p.split("/").some((s) => s === "." || s === "..") && !/[\0\r\n]/.test(p), {
    message: "an object path is relative to its bucket, without . or .. segments",
  });
const PathBody = z.object({ path: ObjectPath, options: z.record(z.string(), z.unknown()).optional() });
const SignBody = PathBody.extend({
  // Storage's own bound is its JWT's lifetime; a week is what Studio offers at most.
  expiresIn: z
    .number()
    .int()
    .min(1)
    .max(60 * 60 * 24 * 365)
    .default(60 * 60 * 24),
});
const MoveBody = z.object({ from: ObjectPath, to: ObjectPath });

export function storageRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/:ref/buckets", async (c) => {
    const ref = await refOf(c, "sql.read");
    return c.json(await listBuckets(authed(c), ref));
  });
  app.post("/:ref/buckets", async (c) => {
    const ref = await refOf(c, "sql.write");
    const { id, ...settings } = await jsonBody(c, CreateBody);
    return c.json(await createBucket(authed(c), ref, id, settings));
  });
  app.get("/:ref/buckets/:id", async (c) => {
    const ref = await refOf(c, "sql.read");
    return c.json(await getBucket(authed(c), ref, bucketOf(c)));
  });
  app.patch("/:ref/buckets/:id", async (c) => {
    const ref = await refOf(c, "sql.write");
    const id = bucketOf(c);
    return c.json((await updateBucket(authed(c), ref, id, await jsonBody(c, Settings))) as object);
  });
  app.delete("/:ref/buckets/:id", async (c) => {
    const ref = await refOf(c, "sql.write");
    return c.json((await deleteBucket(authed(c), ref, bucketOf(c))) as object);
  });
  app.post("/:ref/buckets/:id/empty", async (c) => {
    const ref = await refOf(c, "sql.write");
    return c.json((await emptyBucket(authed(c), ref, bucketOf(c))) as object);
  });
  app.post("/:ref/buckets/:id/objects/list", async (c) => {
    const ref = await refOf(c, "sql.read");
    const id = bucketOf(c);
    return c.json(await listObjects(authed(c), ref, id, await jsonBody(c, ListBody)));
  });
  app.delete("/:ref/buckets/:id/objects", async (c) => {
    const ref = await refOf(c, "sql.write");
    const id = bucketOf(c);
    const { paths } = await jsonBody(c, DeleteObjectsBody);
    return c.json((await deleteObjects(authed(c), ref, id, paths)) as object);
  });
  app.post("/:ref/buckets/:id/objects/download", async (c) => {
    const ref = await refOf(c, "sql.read");
    const id = bucketOf(c);
    const { path } = await jsonBody(c, PathBody);
    const file = await downloadObject(authed(c), ref, id, path);
    return c.body(file.bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
      "content-disposition": "attachment",
    });
  });
  app.post("/:ref/buckets/:id/objects/sign", async (c) => {
    const ref = await refOf(c, "sql.read");
    const id = bucketOf(c);
    const { path, expiresIn } = await jsonBody(c, SignBody);
    return c.json(await signObject(authed(c), ref, id, path, expiresIn));
  });
  app.post("/:ref/buckets/:id/objects/public-url", async (c) => {
    const ref = await refOf(c, "sql.read");
    const id = bucketOf(c);
    const { path } = await jsonBody(c, PathBody);
    return c.json(await publicObjectUrl(authed(c), ref, id, path));
  });
  app.post("/:ref/buckets/:id/objects/move", async (c) => {
    const ref = await refOf(c, "sql.write");
    const id = bucketOf(c);
    const { from, to } = await jsonBody(c, MoveBody);
    return c.json((await moveObject(authed(c), ref, id, from, to)) as object);
  });
  app.post("/:ref/buckets/:id/objects/copy", async (c) => {
    const ref = await refOf(c, "sql.write");
    const id = bucketOf(c);
    const { from, to } = await jsonBody(c, MoveBody);
    return c.json((await copyObject(authed(c), ref, id, from, to)) as object);
  });
  app.get("/:ref/credentials", async (c) => {
    const ref = param(c, "ref", RefParam, "Project");
    return c.json(await storageCredentials(authed(c), ref));
  });
  app.post("/:ref/credentials", async (c) => changeStorageCredentials(authed(c), param(c, "ref", RefParam, "Project")));
  app.delete("/:ref/credentials/:id", async (c) =>
    changeStorageCredentials(authed(c), param(c, "ref", RefParam, "Project")),
  );
  // STUB: analytics (Iceberg) and vector buckets are features of Supabase's hosted Storage; the
  // settings answer says both are off, and these lists are empty in Studio's shapes
  // (analytics-buckets-query.ts reads `data`, vector-buckets-query.ts `vectorBuckets`). Creating
  // one falls through to the catch-all 404, so nobody believes a bucket was made. Members only.
  app.get("/:ref/analytics-buckets", async (c) => {
    await projectForMember(authed(c), param(c, "ref", RefParam, "Project"), "projects.read");
    return c.json({ data: [] });
  });
  app.get("/:ref/vector-buckets", async (c) => {
    await projectForMember(authed(c), param(c, "ref", RefParam, "Project"), "projects.read");
    return c.json({ vectorBuckets: [] });
  });
  return app;
}
