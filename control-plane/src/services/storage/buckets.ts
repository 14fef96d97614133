import { z } from "zod";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { auditProjectChange } from "../audit/project-change.js";
import { projectForMember } from "../organizations/access.js";
import type { Action } from "../permissions/matrix.js";
import { hostFactsFor } from "../projects/host-facts.js";
import { callProjectApi, type ProjectApiCall, projectApiError } from "../projects/project-api.js";
import { requireReleaseService } from "../projects/release-services.js";

/**
 * Studio's Storage pages (buckets and their objects) as calls to the project's Storage API
 * (storage-api, behind the gateway's /storage/v1), with the project's service-role key; the
 * paths and bodies are Storage's published API (see storage.test.ts for the source). Reading
 * buckets and listing objects needs sql.read (any member); changing them sql.write.
 */

const api = (action: Action) => ({ service: "storage", prefix: "/storage/v1", action, needFor: "Storage" }) as const;

async function storage(ctx: AuthedContext, ref: string, action: Action, call: ProjectApiCall): Promise<unknown> {
  const result = await callProjectApi(ctx, ref, api(action), call);
  if (result.status >= 200 && result.status < 300) return result.body ?? {};
  throw projectApiError("Storage", result.status, result.body);
}

/** A bucket as Storage describes it (bucketSchema), rebuilt field by field. */
export const Bucket = z.object({
  id: z.string(),
  name: z.string(),
  owner: z.string().optional(),
  public: z.boolean().optional(),
  type: z.string().optional(),
  file_size_limit: z.number().nullable().optional(),
  allowed_mime_types: z.array(z.string()).nullable().optional(),
  created_at: z.string().optional(),
  updated_at: z.string().optional(),
});

function parse<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  const r = schema.safeParse(body);
  if (!r.success)
    throw new ApiError("bad_gateway", `The project's Storage service answered ${what} in an unexpected shape`);
  return r.data;
}

const seg = (s: string) => encodeURIComponent(s);

const audit = auditProjectChange;

export async function listBuckets(ctx: AuthedContext, ref: string) {
  return parse(z.array(Bucket), await storage(ctx, ref, "sql.read", { method: "GET", path: "/bucket" }), "its buckets");
}

export async function getBucket(ctx: AuthedContext, ref: string, id: string) {
  return parse(
    Bucket,
    await storage(ctx, ref, "sql.read", { method: "GET", path: `/bucket/${seg(id)}` }),
    "the bucket",
  );
}

export interface BucketInput {
  public?: boolean | undefined;
  file_size_limit?: number | string | null | undefined;
  allowed_mime_types?: string[] | null | undefined;
}

const defined = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** POST /platform/storage/{ref}/buckets {id, public, …} → Storage `POST /bucket` {name: id, id, …}. */
export async function createBucket(ctx: AuthedContext, ref: string, id: string, input: BucketInput) {
  const body = defined({ name: id, id, ...input });
  const answer = await storage(ctx, ref, "sql.write", { method: "POST", path: "/bucket", body });
  await audit(ctx, ref, "project.storage_bucket.create", id, { public: input.public === true });
  return parse(z.looseObject({ name: z.string() }), answer, "the new bucket");
}

/** PATCH /platform/storage/{ref}/buckets/{id} → Storage `PUT /bucket/{id}`. */
export async function updateBucket(ctx: AuthedContext, ref: string, id: string, input: BucketInput) {
  const answer = await storage(ctx, ref, "sql.write", {
    method: "PUT",
    path: `/bucket/${seg(id)}`,
    body: defined({ ...input }),
  });
  await audit(ctx, ref, "project.storage_bucket.update", id, defined({ public: input.public }));
  return answer;
}

/** DELETE /platform/storage/{ref}/buckets/{id} → Storage `DELETE /bucket/{id}` (it must be empty). */
export async function deleteBucket(ctx: AuthedContext, ref: string, id: string) {
  const answer = await storage(ctx, ref, "sql.write", { method: "DELETE", path: `/bucket/${seg(id)}` });
  await audit(ctx, ref, "project.storage_bucket.delete", id);
  return answer;
}

/** POST /platform/storage/{ref}/buckets/{id}/empty → Storage `POST /bucket/{id}/empty`. */
export async function emptyBucket(ctx: AuthedContext, ref: string, id: string) {
  const answer = await storage(ctx, ref, "sql.write", { method: "POST", path: `/bucket/${seg(id)}/empty` });
  await audit(ctx, ref, "project.storage_bucket.empty", id);
  return answer;
}

export interface ListObjectsInput {
  path: string;
  options?:
    | {
        limit?: number | undefined;
        offset?: number | undefined;
        search?: string | undefined;
        sortBy?: { column: string; order: string } | undefined;
      }
    | undefined;
}

/** POST …/buckets/{id}/objects/list {path, options} → Storage `POST /object/list/{id}` {prefix, …options}. */
export async function listObjects(ctx: AuthedContext, ref: string, id: string, input: ListObjectsInput) {
  const body = defined({ prefix: input.path, ...(input.options ?? {}) });
  const answer = await storage(ctx, ref, "sql.read", { method: "POST", path: `/object/list/${seg(id)}`, body });
  return parse(z.array(z.looseObject({ name: z.string() })), answer, "the objects");
}

/** DELETE …/buckets/{id}/objects {paths} → Storage `DELETE /object/{id}` {prefixes}. */
export async function deleteObjects(ctx: AuthedContext, ref: string, id: string, paths: string[]) {
  const answer = await storage(ctx, ref, "sql.write", {
    method: "DELETE",
    path: `/object/${seg(id)}`,
    body: { prefixes: paths },
  });
  await audit(ctx, ref, "project.storage_object.delete", id, { count: paths.length });
  return answer;
}

/** An object's path inside its bucket, as a URL path (each segment escaped, slashes kept). */
const objectPath = (path: string) => path.split("/").map(seg).join("/");

/** The project's public Storage URL for a path relative to `/storage/v1` (where apps reach it). */
function publicStorageUrl(publicUrl: string, rest: string): string {
  if (!publicUrl) throw new ApiError("unavailable", "This project has no public URL yet (no gateway port)");
  return `${publicUrl.replace(/\/+$/, "")}/storage/v1${rest}`;
}

/** POST …/objects/download {path} → Storage `GET /object/authenticated/{id}/{path}`: the bytes (bounded by the agent frame). */
export async function downloadObject(
  ctx: AuthedContext,
  ref: string,
  id: string,
  path: string,
): Promise<{ bytes: Uint8Array; contentType: string }> {
  const result = await callProjectApi(ctx, ref, api("sql.read"), {
    method: "GET",
    path: `/object/authenticated/${seg(id)}/${objectPath(path)}`,
    binary: true,
  });
  if (result.status < 200 || result.status >= 300) throw projectApiError("Storage", result.status, result.body);
  return { bytes: result.bytes ?? new Uint8Array(), contentType: result.contentType ?? "application/octet-stream" };
}

/** POST …/objects/sign {path, expiresIn} → Storage `POST /object/sign/{id}/{path}` {expiresIn}; {signedUrl} on the project's public URL. */
export async function signObject(ctx: AuthedContext, ref: string, id: string, path: string, expiresIn: number) {
  const result = await callProjectApi(ctx, ref, api("sql.read"), {
    method: "POST",
    path: `/object/sign/${seg(id)}/${objectPath(path)}`,
    body: { expiresIn },
  });
  if (result.status < 200 || result.status >= 300) throw projectApiError("Storage", result.status, result.body);
  const { signedURL } = parse(z.object({ signedURL: z.string().startsWith("/") }), result.body, "the signed URL");
  return { signedUrl: publicStorageUrl(result.publicUrl, signedURL) };
}

/** POST …/objects/public-url {path} → {publicUrl}: Storage's public object route on the project's public URL (no call). */
export async function publicObjectUrl(ctx: AuthedContext, ref: string, id: string, path: string) {
  const { publicUrl } = await projectPublicUrl(ctx, ref);
  return { publicUrl: publicStorageUrl(publicUrl, `/object/public/${seg(id)}/${objectPath(path)}`) };
}

/** The project's public URL, for a member of a project whose release runs Storage (no call to it). */
async function projectPublicUrl(ctx: AuthedContext, ref: string) {
  const { project } = await projectForMember(ctx, ref, "sql.read");
  const release = ctx.deps.releases.get(project.release);
  if (release) requireReleaseService(release, "storage", "Storage");
  const facts = await hostFactsFor(ctx, project);
  return { publicUrl: facts?.url ?? "" };
}

/** POST …/objects/move {from, to} → Storage `POST /object/move` {bucketId, sourceKey, destinationKey}. */
export async function moveObject(ctx: AuthedContext, ref: string, id: string, from: string, to: string) {
  const answer = await storage(ctx, ref, "sql.write", {
    method: "POST",
    path: "/object/move",
    body: { bucketId: id, sourceKey: from, destinationKey: to },
  });
  await audit(ctx, ref, "project.storage_object.move", id);
  return answer;
}

/** POST …/objects/copy {from, to} → Storage `POST /object/copy` {bucketId, sourceKey, destinationKey}. */
export async function copyObject(ctx: AuthedContext, ref: string, id: string, from: string, to: string) {
  const answer = await storage(ctx, ref, "sql.write", {
    method: "POST",
    path: "/object/copy",
    body: { bucketId: id, sourceKey: from, destinationKey: to },
  });
  await audit(ctx, ref, "project.storage_object.copy", id);
  return answer;
}
