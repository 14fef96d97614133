import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param } from "../../../lib/validate.js";
import { projectForMember } from "../../../services/organizations/access.js";
import type { Action } from "../../../services/permissions/matrix.js";
import {
  createBucket,
  deleteBucket,
  deleteObjects,
  emptyBucket,
  getBucket,
  listBuckets,
  listObjects,
  updateBucket,
} from "../../../services/storage/buckets.js";
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
  return app;
}
