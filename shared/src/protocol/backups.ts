import { z } from "zod";

/**
 * What the control plane and the agent agree on for backups (ADR 0015). The bytes never pass
 * through the control plane: the agent streams each artifact straight to object storage through
 * presigned multipart-upload URLs it asks for in batches (UploadUrlsRequest over HTTP with its
 * host credential), and restores from presigned GET URLs carried in the job.
 */

export const BACKUP_JOB_KIND = "backup";
export const RESTORE_JOB_KIND = "restore";

/** S3 allows parts of 5 MiB..5 GiB (the last may be smaller) and at most 10,000 parts. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 512 * 1024 * 1024;
export const MAX_PARTS = 10_000;

/** `aes-256-gcm-chunked-v1`: see host-agent/src/backups/crypto.ts for the byte layout. */
export const ENCRYPTION_SCHEME = "aes-256-gcm-chunked-v1";

const Id = z.string().min(1).max(128);
const ServiceName = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/);
/** An artifact's file name inside the backup (object key suffix): `db.dump`, `db-config.tar`, … */
export const ArtifactName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "an artifact name is a short file name");
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const PartNumber = z.number().int().min(1).max(MAX_PARTS);
const HttpUrl = z.string().url().max(8192);

/** Where an artifact's bytes come from inside the project (and go back to on restore). */
export const ArtifactSource = z.discriminatedUnion("kind", [
  /** `pg_dump --format=custom` of one database, run inside the service's container; pg_restore back. */
  z.object({
    kind: z.literal("pg_dump"),
    service: ServiceName,
    database: z.string().min(1).max(63),
    user: z.string().min(1).max(63),
  }),
  /** A tar of a directory inside the service's container (a volume: db-config, storage files). */
  z.object({
    kind: z.literal("tar"),
    service: ServiceName,
    path: z.string().regex(/^\/[A-Za-z0-9._/-]{0,1023}$/, "an absolute path without spaces or dot-dot"),
  }),
]);
export type ArtifactSource = z.infer<typeof ArtifactSource>;

export const Encryption = z.object({
  scheme: z.literal(ENCRYPTION_SCHEME),
  /** 32 random bytes, base64; travels only inside the (TLS) agent channel, never stored on the host. */
  keyBase64: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
});
export type Encryption = z.infer<typeof Encryption>;

/** `job.params` of a `backup` job. */
export const BackupJobParams = z.object({
  backupId: Id,
  partSizeBytes: z.number().int().min(MIN_PART_BYTES).max(MAX_PART_BYTES),
  artifacts: z
    .array(z.object({ name: ArtifactName, source: ArtifactSource }))
    .min(1)
    .max(8),
  encryption: Encryption.optional(),
});
export type BackupJobParams = z.infer<typeof BackupJobParams>;

/** `POST /agent/v1/jobs/{jobId}/upload-urls` (agent → control plane, host credential). */
export const UploadUrlsRequest = z.object({
  artifact: ArtifactName,
  partNumbers: z.array(PartNumber).min(1).max(100),
});
export type UploadUrlsRequest = z.infer<typeof UploadUrlsRequest>;

export const UploadUrlsResponse = z.object({
  urls: z.array(z.object({ partNumber: PartNumber, url: HttpUrl })),
  /** ISO time after which the URLs stop working; ask again for parts not uploaded by then. */
  expiresAt: z.string(),
});
export type UploadUrlsResponse = z.infer<typeof UploadUrlsResponse>;

/** The stored object's facts: size and SHA-256 of the bytes as stored (after encryption). */
const StoredArtifact = z.object({
  name: ArtifactName,
  sizeBytes: z.number().int().nonnegative(),
  sha256: Sha256Hex,
});

/** `job_result.result` of a successful `backup` job: what the control plane needs to complete the uploads. */
export const BackupJobResult = z.object({
  artifacts: z.array(
    StoredArtifact.extend({
      parts: z
        .array(z.object({ partNumber: PartNumber, etag: z.string().min(1).max(256) }))
        .min(1)
        .max(MAX_PARTS),
    }),
  ),
});
export type BackupJobResult = z.infer<typeof BackupJobResult>;

/** `job.params` of a `restore` job: every artifact with a presigned GET URL and what it must hash to. */
export const RestoreJobParams = z.object({
  backupId: Id,
  artifacts: z
    .array(StoredArtifact.extend({ source: ArtifactSource, url: HttpUrl }))
    .min(1)
    .max(8),
  encryption: Encryption.optional(),
});
export type RestoreJobParams = z.infer<typeof RestoreJobParams>;

/** `job_result.result` of a successful `restore` job. */
export const RestoreJobResult = z.object({
  artifacts: z.array(z.object({ name: ArtifactName, sizeBytes: z.number().int().nonnegative() })),
});
export type RestoreJobResult = z.infer<typeof RestoreJobResult>;
