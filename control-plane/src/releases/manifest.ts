import { ArtifactName, ArtifactSource } from "@supamanager/shared";
import { z } from "zod";

/**
 * A release is DATA: which image each service runs, how it is wired, which health rule says it
 * is up, and which services must be healthy for the project to be ACTIVE_HEALTHY. The control
 * plane renders a project's Compose stack from it (render.ts); upgrading means a new release
 * plus a new spec version. Manifests are validated by this schema wherever they come from
 * (built in, or SUPAMANAGER_RELEASES_FILE).
 */

const Name = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "a name is lowercase letters, digits and dashes");

/**
 * The optional parts of a release a project may leave out (docs/releases.md): each service of a
 * part runs only when the project chose the part; a service without a part always runs.
 */
export const RELEASE_PARTS = ["logs", "realtime", "storage", "functions"] as const;
export const ReleasePart = z.enum(RELEASE_PARTS);
export type ReleasePart = z.output<typeof ReleasePart>;
const EnvName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name is UPPER_SNAKE_CASE");

export const ReleaseService = z.strictObject({
  image: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[a-z0-9][a-z0-9._/:@-]*$/, "image must be an image reference like supamanager/postgres:local"),
  /** The key in the local images file (images/manifest.local.json) that may override `image`. */
  imageKey: Name.optional(),
  /** Exec-form command. A `$` is literal (escaped for Compose); `${NAME}` refers to a project variable. */
  command: z.array(z.string().max(4096)).max(64).optional(),
  /** Exec-form entrypoint override, same rules as `command`. */
  entrypoint: z.array(z.string().max(4096)).max(64).optional(),
  /** The user the container runs as (`uid`, `uid:gid` or a name). */
  user: z
    .string()
    .regex(/^[a-z0-9_][a-z0-9_.-]*(?::[a-z0-9_][a-z0-9_.-]*)?$/i)
    .max(64)
    .optional(),
  /**
   * Extra DNS names of the service on the project's own network (e.g. realtime derives its tenant
   * from the host name it is called with). The network is per project, so aliases never collide.
   */
  networkAliases: z
    .array(z.string().regex(/^[a-z0-9][a-z0-9.-]{0,252}$/))
    .max(8)
    .default([]),
  /**
   * Mount the host's Docker socket read-only (log shipping). Only for a service whose config limits
   * it to the project's own containers (see docs/releases.md).
   */
  dockerSocket: z.boolean().default(false),
  /**
   * Container environment. `${NAME}` refers to a project variable (see variables.ts), left for Compose to interpolate from the stack's env, so secrets never sit in the
   * compose file itself.
   */
  environment: z.record(EnvName, z.string().max(4096)).default({}),
  /** Container ports published on the host's bind address; each gets a reserved host port. */
  ports: z
    .array(z.strictObject({ name: Name, container: z.number().int().min(1).max(65535) }))
    .max(8)
    .default([]),
  /** Named volumes (prefixed by the ref when rendered). */
  volumes: z
    .array(z.strictObject({ name: Name, target: z.string().startsWith("/").max(255) }))
    .max(8)
    .default([]),
  /** Release files mounted into the container (read-only), e.g. init SQL or a gateway config. */
  mounts: z
    .array(z.strictObject({ file: z.string().min(1).max(255), target: z.string().startsWith("/").max(255) }))
    .max(16)
    .default([]),
  /**
   * Services this one waits for: until healthy when the dependency has a health rule, until
   * started otherwise.
   */
  dependsOn: z.array(Name).max(16).default([]),
  /** The health rule: Docker's health check command (exec form) and timings in seconds. */
  health: z
    .strictObject({
      test: z.array(z.string().max(4096)).min(1).max(32),
      intervalSeconds: z.number().positive().max(3600).default(5),
      timeoutSeconds: z.number().positive().max(3600).default(5),
      retries: z.number().int().min(1).max(100).default(5),
      startPeriodSeconds: z.number().nonnegative().max(3600).default(10),
    })
    .optional(),
  /** Must be healthy for ACTIVE_HEALTHY. A service without a health rule counts once running. */
  required: z.boolean().default(true),
  /** The optional part this service belongs to; absent → the service always runs. */
  part: ReleasePart.optional(),
  /**
   * The least memory this service runs in (its measured footprint plus headroom, sources in the
   * release). Its mem_limit is this floor plus its share of what the compute size has beyond the
   * floors of every service that runs; the release minimum is the sum of the floors.
   */
  memoryMinBytes: z.number().int().positive().optional(),
  /** Share of the project's compute-size memory this service may use (mem_limit). */
  memoryShare: z.number().positive().max(1),
  /**
   * Share of the compute size's CPUs this service may use (`cpus`), when the renderer is given a
   * CPU budget. Defaults to memoryShare.
   */
  cpuShare: z.number().positive().max(1).optional(),
});
export type ReleaseService = z.output<typeof ReleaseService>;

export const ReleaseManifest = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "a release name is lowercase, 1-64 characters"),
    description: z.string().max(500).optional(),
    /**
     * The least compute-size memory the release runs in (a full Supabase stack needs ~2 GiB).
     * Project creation refuses smaller sizes: see minimumComputeSize() in compute.ts.
     */
    minMemoryBytes: z.number().int().positive().optional(),
    /** The upstream version this release follows (e.g. supabase/supabase `self-hosted/v0.8.3`). */
    upstream: z.string().max(200).optional(),
    /**
     * How the compute size's CPUs become `cpus` limits: `split` by cpuShare (services share the
     * size), or `size` (every service may use all of the size's CPUs: boot-time work such as
     * migrations is never starved by a tiny quota; memory still bounds the stack).
     */
    cpuLimit: z.enum(["split", "size"]).default("split"),
    /**
     * Whether the release's gateway accepts the new opaque keys (sb_publishable_ → anon,
     * sb_secret_ → service_role); the API key listing says so (services/secrets/api-keys.ts).
     */
    opaqueKeys: z.boolean().default(false),
    /**
     * The project's database: which service runs PostgreSQL, its major version and the named
     * volume holding its data directory. Upgrades read it (docs/upgrades.md): a change of
     * `postgresMajor` needs a data step, and a downgrade of it is refused. Absent → projects on this
     * release cannot be upgraded to or from it.
     */
    database: z
      .strictObject({
        service: Name,
        postgresMajor: z.number().int().min(12).max(99),
        volume: Name,
      })
      .optional(),
    /** The optional parts a new project gets when it names none (absent → every part). */
    defaultParts: z.array(ReleasePart).max(RELEASE_PARTS.length).optional(),
    services: z.record(Name, ReleaseService).refine((s) => Object.keys(s).length > 0, "a release needs a service"),
    /**
     * Config files written into the project's directory on the host. `template` may refer to
     * project variables as `${NAME}` (substituted when rendered, so the file may hold secrets).
     * Mode 0644 by default: containers read these files as their own (non-root) users, and the
     * project's directory on the host is 0700, so nobody else on the host can reach them.
     */
    files: z
      .array(
        z.strictObject({
          path: z
            .string()
            .regex(/^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/, "a file path is relative, lowercase, no `..`"),
          template: z.string().max(256 * 1024),
          mode: z.number().int().min(0).max(0o777).default(0o644),
        }),
      )
      .max(32)
      .default([]),
    /**
     * What a logical backup of a project on this release consists of (ADR 0015): each artifact is
     * one object in the backup, produced by the agent from `source` and put back there on restore.
     * Absent → projects on this release cannot be backed up.
     */
    backup: z
      .strictObject({
        artifacts: z
          .array(z.strictObject({ name: ArtifactName, source: ArtifactSource }))
          .min(1)
          .max(8),
      })
      .optional(),
  })
  .superRefine((m, ctx) => {
    const names = new Set(Object.keys(m.services));
    let share = 0;
    let cpu = 0;
    const portNames = new Set<string>();
    for (const [name, svc] of Object.entries(m.services)) {
      share += svc.memoryShare;
      cpu += svc.cpuShare ?? svc.memoryShare;
      for (const dep of svc.dependsOn) {
        if (!names.has(dep))
          ctx.addIssue({ code: "custom", path: ["services", name, "dependsOn"], message: `unknown service ${dep}` });
      }
      for (const p of svc.ports) {
        if (portNames.has(p.name)) {
          ctx.addIssue({
            code: "custom",
            path: ["services", name, "ports"],
            message: `port name ${p.name} is used twice`,
          });
        }
        portNames.add(p.name);
      }
    }
    const files = new Set(m.files.map((f) => f.path));
    for (const [name, svc] of Object.entries(m.services)) {
      for (const mount of svc.mounts) {
        if (!files.has(mount.file)) {
          ctx.addIssue({ code: "custom", path: ["services", name, "mounts"], message: `unknown file ${mount.file}` });
        }
      }
    }
    if (m.database) {
      const db = m.services[m.database.service];
      if (!db) {
        ctx.addIssue({
          code: "custom",
          path: ["database", "service"],
          message: `unknown service ${m.database.service}`,
        });
      } else if (!db.volumes.some((v) => v.name === m.database?.volume)) {
        ctx.addIssue({
          code: "custom",
          path: ["database", "volume"],
          message: `service ${m.database.service} has no volume ${m.database.volume}`,
        });
      }
    }
    const artifactNames = new Set<string>();
    for (const [i, a] of (m.backup?.artifacts ?? []).entries()) {
      if (!names.has(a.source.service)) {
        ctx.addIssue({
          code: "custom",
          path: ["backup", "artifacts", i, "source", "service"],
          message: `unknown service ${a.source.service}`,
        });
      }
      if (artifactNames.has(a.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["backup", "artifacts", i, "name"],
          message: `artifact ${a.name} is listed twice`,
        });
      }
      artifactNames.add(a.name);
    }
    if (share > 1.0001)
      ctx.addIssue({ code: "custom", path: ["services"], message: "memory shares add up to more than 1" });
    if (cpu > 1.0001) ctx.addIssue({ code: "custom", path: ["services"], message: "CPU shares add up to more than 1" });
  });
export type ReleaseManifest = z.output<typeof ReleaseManifest>;

/** A release file holds one manifest or an array of them. */
export const ReleasesFile = z.union([ReleaseManifest, z.array(ReleaseManifest).max(100)]);
