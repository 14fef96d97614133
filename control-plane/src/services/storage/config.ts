import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { projectForMember } from "../organizations/access.js";
import { requireReleaseService } from "../projects/release-services.js";
import { loadProjectSecrets } from "../secrets/store.js";

/**
 * Studio's Storage settings and S3 connection page, answered from what the project's release runs:
 * storage-api's environment in the release manifest (FILE_SIZE_LIMIT, ENABLE_IMAGE_TRANSFORMATION,
 * the S3 protocol keys) and the project's one S3 access key pair, generated with the project.
 * Nothing here is changeable yet: a change answers 400 saying so (never a silent success).
 */

async function storageRelease(ctx: AuthedContext, ref: string, action: "projects.read" | "projects.read_secrets") {
  const { project } = await projectForMember(ctx, ref, action);
  const release = ctx.deps.releases.get(project.release);
  if (!release)
    throw new ApiError("unavailable", `Project ${ref} runs release ${project.release}, which is not loaded here`);
  const name = requireReleaseService(release, "storage", "Storage");
  const svc = release.services[name];
  return { project, env: svc?.environment ?? {} };
}

/** GET /platform/projects/{ref}/config/storage: StorageConfigResponse from the release. */
export async function storageConfig(ctx: AuthedContext, ref: string) {
  const { env } = await storageRelease(ctx, ref, "projects.read");
  const limit = Number(env.FILE_SIZE_LIMIT ?? "");
  return {
    fileSizeLimit: Number.isSafeInteger(limit) && limit > 0 ? limit : 52_428_800,
    features: {
      imageTransformation: { enabled: env.ENABLE_IMAGE_TRANSFORMATION === "true" },
      s3Protocol: { enabled: env.S3_PROTOCOL_ACCESS_KEY_ID !== undefined },
      icebergCatalog: { enabled: false, maxNamespaces: 0, maxTables: 0, maxCatalogs: 0 },
      vectorBuckets: { enabled: false, maxBuckets: 0, maxIndexes: 0 },
    },
    // list_v2 off: Studio lists objects with the v1 call we translate.
    capabilities: { list_v2: false, iceberg_catalog: false },
    external: { upstreamTarget: "main" as const },
    migrationVersion: "",
    databasePoolMode: "",
  };
}

/** PATCH: the settings come from the release; say so instead of claiming a change. */
export async function updateStorageConfig(ctx: AuthedContext, ref: string): Promise<never> {
  await projectForMember(ctx, ref, "projects.update");
  const c = await storageConfig(ctx, ref);
  throw new ApiError(
    "bad_request",
    `Storage settings come from the project's release and cannot be changed here yet (upload limit ${c.fileSizeLimit} bytes, image transformation ${c.features.imageTransformation.enabled ? "on" : "off"}, S3 protocol ${c.features.s3Protocol.enabled ? "on" : "off"}). Per-bucket limits can be set on each bucket.`,
  );
}

/**
 * GET /platform/storage/{ref}/credentials: the project's S3 access key pair (its id only; the
 * secret is never listed), for members who may read the project's secrets.
 */
export async function storageCredentials(ctx: AuthedContext, ref: string) {
  const { project, env } = await storageRelease(ctx, ref, "projects.read_secrets");
  if (env.S3_PROTOCOL_ACCESS_KEY_ID === undefined) return { data: [] };
  const secrets = await loadProjectSecrets(ctx.db, ctx.deps, project.ref);
  const id = secrets.S3_PROTOCOL_ACCESS_KEY_ID;
  if (!id) return { data: [] };
  return {
    data: [
      {
        id: "project",
        description: "The project's S3 access key, created with the project (SupaManager keeps one per project)",
        access_key: id,
        created_at: project.createdAt.toISOString(),
      },
    ],
  };
}

/** POST|DELETE /platform/storage/{ref}/credentials: one fixed pair per project; say so. */
export async function changeStorageCredentials(ctx: AuthedContext, ref: string): Promise<never> {
  await storageRelease(ctx, ref, "projects.read_secrets");
  await projectForMember(ctx, ref, "projects.update");
  throw new ApiError(
    "bad_request",
    "SupaManager projects have one S3 access key pair, created with the project; creating or revoking S3 access keys is not supported yet",
  );
}
