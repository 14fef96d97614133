import type { ReleaseCatalog } from "../../releases/catalog.js";
import type { Refusal, ReleaseEligibility } from "./eligibility.js";

/**
 * Studio and the Management API speak of PostgreSQL versions, not releases: Studio offers one
 * target per PostgreSQL major and posts `target_version: "17"`. These functions map our releases
 * onto that vocabulary (docs/upgrades-api.md): per major, one preferred eligible release.
 */

/** How many service names two releases share: a rough "same family" measure (local → local-17). */
function sharedServices(catalog: ReleaseCatalog, a: string, b: string): number {
  const x = catalog.get(a);
  const y = catalog.get(b);
  if (!x || !y) return 0;
  const names = new Set(Object.keys(x.services));
  return Object.keys(y.services).filter((n) => names.has(n)).length;
}

/**
 * The release Studio's "PostgreSQL <major>" stands for, among the eligible ones: the catalog's
 * default release when it is one of them, else the one sharing the most services with the
 * project's current release (the same family of stack), else the first in catalog order.
 */
export function preferredTargets(
  catalog: ReleaseCatalog,
  currentRelease: string,
  list: readonly ReleaseEligibility[],
): ReleaseEligibility[] {
  const byMajor = new Map<number, ReleaseEligibility[]>();
  for (const e of list) {
    if (!e.eligible || e.postgresMajor === null) continue;
    byMajor.set(e.postgresMajor, [...(byMajor.get(e.postgresMajor) ?? []), e]);
  }
  const order = catalog.names();
  return [...byMajor.entries()]
    .sort(([a], [b]) => b - a)
    .map(([, candidates]) => {
      const ranked = [...candidates].sort((x, y) => {
        const dx = x.release === catalog.defaultRelease ? 1 : 0;
        const dy = y.release === catalog.defaultRelease ? 1 : 0;
        if (dx !== dy) return dy - dx;
        const sx = sharedServices(catalog, currentRelease, x.release);
        const sy = sharedServices(catalog, currentRelease, y.release);
        if (sx !== sy) return sy - sx;
        return order.indexOf(x.release) - order.indexOf(y.release);
      });
      return ranked[0] as ReleaseEligibility;
    });
}

export type TargetResolution = { ok: true; release: string } | { ok: false; refusal: Refusal };

/**
 * The release a Management API `target_version` names: a release name as is, or a PostgreSQL
 * major ("17") → the preferred eligible release of that major. A major with no eligible release
 * is refused with the reason of the first release of that major (or the list of what is possible).
 */
export function resolveTargetVersion(
  catalog: ReleaseCatalog,
  currentRelease: string,
  list: readonly ReleaseEligibility[],
  targetVersion: string,
): TargetResolution {
  if (catalog.get(targetVersion)) return { ok: true, release: targetVersion };
  const eligible = list.filter((e) => e.eligible).map((e) => e.release);
  const possible = eligible.length > 0 ? `eligible releases: ${eligible.join(", ")}` : "no release is eligible";
  if (!/^[0-9]{1,3}$/.test(targetVersion)) {
    return {
      ok: false,
      refusal: {
        code: "unknown_release",
        message: `target_version: ${targetVersion} is neither a release nor a PostgreSQL major version (${possible})`,
      },
    };
  }
  const major = Number(targetVersion);
  const preferred = preferredTargets(catalog, currentRelease, list).find((e) => e.postgresMajor === major);
  if (preferred) return { ok: true, release: preferred.release };
  const refused = list.find((e) => e.postgresMajor === major && e.refusal);
  if (refused?.refusal) return { ok: false, refusal: refused.refusal };
  return {
    ok: false,
    refusal: { code: "unknown_release", message: `target_version: no release runs PostgreSQL ${major} (${possible})` },
  };
}
