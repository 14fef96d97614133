import { COMPUTE_MEMORY_BYTES, COMPUTE_SIZES, type ComputeSize } from "../services/projects/model.js";
import type { ReleaseManifest } from "./manifest.js";

/**
 * CPUs per compute size: the project's whole stack shares them (each service gets its cpuShare
 * as a `cpus` limit), next to the memory of COMPUTE_MEMORY_BYTES. Documented in docs/releases.md.
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

/**
 * The smallest compute size a release runs in: the first whose memory reaches the release's
 * minMemoryBytes (the smallest size when the release names none). Undefined when no size is big
 * enough. Project creation (and a compute-size change) should refuse a smaller size with a 4xx,
 * e.g. `computeSizeAllowed(release, size)` in create-project before placing the project.
 */
export function minimumComputeSize(release: Pick<ReleaseManifest, "minMemoryBytes">): ComputeSize | undefined {
  const need = release.minMemoryBytes ?? 0;
  return COMPUTE_SIZES.find((s) => COMPUTE_MEMORY_BYTES[s] >= need);
}

/** Whether `size` may run `release`; `reason` is a client-facing message when it may not. */
export function computeSizeAllowed(
  release: Pick<ReleaseManifest, "name" | "minMemoryBytes">,
  size: ComputeSize,
): { ok: true } | { ok: false; reason: string } {
  const min = minimumComputeSize(release);
  if (min === undefined) {
    return { ok: false, reason: `Release ${release.name} needs more memory than any compute size offers` };
  }
  if (COMPUTE_SIZES.indexOf(size) >= COMPUTE_SIZES.indexOf(min)) return { ok: true };
  return {
    ok: false,
    reason: `Release ${release.name} needs at least the ${min} compute size (${COMPUTE_MEMORY_BYTES[min] / 1024 / 1024} MiB); ${size} is too small`,
  };
}
