import { COMPUTE_MEMORY_BYTES, COMPUTE_SIZES, type ComputeSize } from "../services/projects/model.js";
import { RELEASE_PARTS, type ReleaseManifest, type ReleasePart } from "./manifest.js";

/**
 * CPUs per compute size: the project's whole stack shares them (each service gets its cpuShare
 * as a `cpus` limit, or all of them with the release's `cpuLimit: size`), next to the memory of
 * COMPUTE_MEMORY_BYTES. Documented in docs/releases.md.
 */
export const COMPUTE_CPUS: Record<ComputeSize, number> = {
  nano: 0.5,
  micro: 1,
  small: 1.5,
  medium: 2,
  large: 3,
  xlarge: 4,
};

/** Memory and CPU limits of a compute size, as renderStack takes them. */
export function computeLimits(size: ComputeSize): { memoryBytes: number; cpus: number } {
  return { memoryBytes: COMPUTE_MEMORY_BYTES[size], cpus: COMPUTE_CPUS[size] };
}

type PartsOf = Pick<ReleaseManifest, "services" | "defaultParts">;

/** The optional parts a release has (those some service belongs to), in RELEASE_PARTS order. */
export function releaseParts(release: Pick<ReleaseManifest, "services">): ReleasePart[] {
  const used = new Set(Object.values(release.services).flatMap((s) => (s.part ? [s.part] : [])));
  return RELEASE_PARTS.filter((p) => used.has(p));
}

/** The parts a project runs: what it chose (only parts the release has), else the release's default. */
export function effectiveParts(release: PartsOf, chosen?: readonly string[] | null): ReleasePart[] {
  const has = releaseParts(release);
  const wanted = chosen ?? release.defaultParts ?? has;
  return has.filter((p) => wanted.includes(p));
}

/** The services that run for `parts`: every service without a part, plus those of the chosen parts. */
export function runningServices<S extends { part?: ReleasePart | undefined }>(
  services: Record<string, S>,
  parts: readonly ReleasePart[],
): [string, S][] {
  return Object.entries(services).filter(([, s]) => s.part === undefined || parts.includes(s.part));
}

/**
 * The least memory a release runs in with `parts`: the sum of its running services' floors
 * (memoryMinBytes), or the release's own minMemoryBytes when that is larger.
 */
export function releaseMinimumBytes(
  release: Pick<ReleaseManifest, "services" | "defaultParts" | "minMemoryBytes">,
  parts?: readonly string[] | null,
): number {
  const floors = runningServices(release.services, effectiveParts(release, parts)).reduce(
    (n, [, s]) => n + (s.memoryMinBytes ?? 0),
    0,
  );
  return Math.max(release.minMemoryBytes ?? 0, floors);
}

/**
 * The smallest compute size a release runs in (with `parts`): the first whose memory reaches the
 * release minimum. Undefined when no size is big enough. Project creation (and a compute-size
 * change) refuses a smaller size with a 4xx, and picks this size when the caller names none.
 */
export function minimumComputeSize(
  release: Pick<ReleaseManifest, "minMemoryBytes"> & Partial<Pick<ReleaseManifest, "services" | "defaultParts">>,
  parts?: readonly string[] | null,
): ComputeSize | undefined {
  const need = releaseMinimumBytes({ services: {}, ...release }, parts);
  return COMPUTE_SIZES.find((s) => COMPUTE_MEMORY_BYTES[s] >= need);
}

/** Whether `size` may run `release` (with `parts`); `reason` is a client-facing message when it may not. */
export function computeSizeAllowed(
  release: Pick<ReleaseManifest, "name" | "minMemoryBytes"> &
    Partial<Pick<ReleaseManifest, "services" | "defaultParts">>,
  size: ComputeSize,
  parts?: readonly string[] | null,
): { ok: true } | { ok: false; reason: string } {
  const min = minimumComputeSize(release, parts);
  if (min === undefined) {
    return { ok: false, reason: `Release ${release.name} needs more memory than any compute size offers` };
  }
  if (COMPUTE_SIZES.indexOf(size) >= COMPUTE_SIZES.indexOf(min)) return { ok: true };
  return {
    ok: false,
    reason: `Release ${release.name} needs at least the ${min} compute size (${COMPUTE_MEMORY_BYTES[min] / 1024 / 1024} MiB); ${size} is too small`,
  };
}
