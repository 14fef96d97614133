import { z } from "zod";
import { effectiveParts, minimumComputeSize, releaseMinimumBytes, releaseParts } from "./compute.js";
import { LOCAL_17_RELEASE, LOCAL_RELEASE } from "./local.js";
import { ReleaseManifest, ReleasesFile } from "./manifest.js";
import { PRODUCTION_RELEASE } from "./production/index.js";
import { V08_RELEASE } from "./supabase-v08/index.js";
import { isProjectVariable, PROJECT_VARIABLES, referencedVariables } from "./variables.js";

/** Every release this control plane can run, by name, and the default for new projects. */
export class ReleaseCatalog {
  readonly #byName: Map<string, ReleaseManifest>;
  constructor(
    manifests: ReleaseManifest[],
    readonly defaultRelease: string,
  ) {
    this.#byName = new Map(manifests.map((m) => [m.name, m]));
    if (!this.#byName.has(defaultRelease)) {
      throw new ReleaseConfigError(
        `SUPAMANAGER_RELEASE: no release named ${defaultRelease}; known: ${[...this.#byName.keys()].join(", ")}`,
      );
    }
  }
  get(name: string): ReleaseManifest | undefined {
    return this.#byName.get(name);
  }
  names(): string[] {
    return [...this.#byName.keys()];
  }
  /** What operators see of every release (GET /platform/fleet/releases, `supamanager releases`). */
  list(): ReleaseSummary[] {
    return [...this.#byName.values()].map((m) => {
      const defaults = effectiveParts(m);
      return {
        name: m.name,
        description: m.description ?? null,
        upstream: m.upstream ?? null,
        parts: releaseParts(m),
        defaultParts: defaults,
        minimumMemoryBytes: releaseMinimumBytes(m, defaults),
        minimumComputeSize: minimumComputeSize(m, defaults) ?? null,
        default: m.name === this.defaultRelease,
      };
    });
  }
}

export interface ReleaseSummary {
  name: string;
  description: string | null;
  upstream: string | null;
  /** The optional parts a project may choose. */
  parts: string[];
  /** The parts a new project gets when it names none. */
  defaultParts: string[];
  /** The release minimum with the default parts, and the smallest compute size holding it. */
  minimumMemoryBytes: number;
  minimumComputeSize: string | null;
  /** Whether new projects get this release when they name none. */
  default: boolean;
}

export class ReleaseConfigError extends Error {
  override name = "ReleaseConfigError";
}

/** images/manifest.local.json: image name → tag. */
const LocalImages = z.record(z.string(), z.string().regex(/^[a-z0-9][a-z0-9._/:@-]*$/));

function issues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`)
    .join("; ");
}

export interface CatalogSources {
  defaultRelease: string;
  /** Parsed JSON of SUPAMANAGER_RELEASES_FILE, when set. */
  releasesFile?: unknown;
  /** Parsed JSON of SUPAMANAGER_LOCAL_IMAGES_FILE, when set. */
  localImages?: unknown;
}

/**
 * Build the catalog: the built-in `local` and `local-17` releases (their images overridden by the
 * local images file), the Kong release (supabase-2026.02, production/) and the v0.8 release
 * (supabase-v0.8.2, supabase-v08/), plus every
 * manifest of the releases file, which may also replace either. Anything invalid is a start-up
 * error naming the variable.
 */
export function buildReleaseCatalog(sources: CatalogSources): ReleaseCatalog {
  const locals = [LOCAL_RELEASE, LOCAL_17_RELEASE].map((m) => ReleaseManifest.parse(m));
  if (sources.localImages !== undefined) {
    const images = LocalImages.safeParse(sources.localImages);
    if (!images.success) throw new ReleaseConfigError(`SUPAMANAGER_LOCAL_IMAGES_FILE: ${issues(images.error)}`);
    for (const svc of locals.flatMap((m) => Object.values(m.services))) {
      const tag = svc.imageKey ? images.data[svc.imageKey] : undefined;
      if (tag) svc.image = tag;
    }
  }
  const production = ReleaseManifest.parse(PRODUCTION_RELEASE);
  const v08 = ReleaseManifest.parse(V08_RELEASE);
  const manifests = new Map<string, ReleaseManifest>([
    ...locals.map((m) => [m.name, m] as const),
    [production.name, production],
    [v08.name, v08],
  ]);
  if (sources.releasesFile !== undefined) {
    const parsed = ReleasesFile.safeParse(sources.releasesFile);
    if (!parsed.success) throw new ReleaseConfigError(`SUPAMANAGER_RELEASES_FILE: ${issues(parsed.error)}`);
    for (const m of Array.isArray(parsed.data) ? parsed.data : [parsed.data]) manifests.set(m.name, m);
  }
  for (const m of manifests.values()) {
    for (const [name, svc] of Object.entries(m.services)) {
      const strings = [
        ...Object.values(svc.environment),
        ...(svc.command ?? []),
        ...(svc.entrypoint ?? []),
        ...(svc.health?.test ?? []),
      ];
      for (const v of strings.flatMap(referencedVariables)) {
        if (!isProjectVariable(v)) {
          throw new ReleaseConfigError(
            `release ${m.name}: service ${name} refers to \${${v}}; known variables: ${PROJECT_VARIABLES.join(", ")}`,
          );
        }
      }
    }
  }
  return new ReleaseCatalog([...manifests.values()], sources.defaultRelease);
}
