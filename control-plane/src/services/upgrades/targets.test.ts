import { describe, expect, it } from "vitest";
import { buildReleaseCatalog } from "../../releases/catalog.js";
import { LOCAL_RELEASE } from "../../releases/local.js";
import { type EligibilityProject, listEligibility } from "./eligibility.js";
import { preferredTargets, resolveTargetVersion } from "./targets.js";

const local17 = {
  ...structuredClone(LOCAL_RELEASE),
  name: "local-17",
  database: { service: "db", postgresMajor: 17, volume: "db-data" },
};
const catalog = buildReleaseCatalog({ defaultRelease: "local", releasesFile: [local17] });

const project = (over: Partial<EligibilityProject> = {}): EligibilityProject => ({
  ref: "abcdefghijklmnopqrst",
  release: "local",
  parts: null,
  computeSize: "large",
  status: "ACTIVE_HEALTHY",
  ...over,
});

describe("preferredTargets", () => {
  it("offers one release per PostgreSQL major, newest major first, preferring the same family of stack", () => {
    const list = listEligibility(catalog, project());
    // PostgreSQL 17: supabase-v0.8.2 and local-17 are both eligible; local-17 shares local's services.
    // PostgreSQL 15: supabase-2026.02 (local itself is the project's own release).
    expect(preferredTargets(catalog, "local", list).map((e) => [e.postgresMajor, e.release])).toEqual([
      [17, "local-17"],
      [15, "supabase-2026.02"],
    ]);
  });

  it("prefers the catalog's default release within a major", () => {
    const withDefault = buildReleaseCatalog({ defaultRelease: "supabase-v0.8.2", releasesFile: [local17] });
    const list = listEligibility(withDefault, project());
    expect(preferredTargets(withDefault, "local", list)[0]?.release).toBe("supabase-v0.8.2");
  });

  it("offers nothing when nothing is eligible", () => {
    expect(preferredTargets(catalog, "local", listEligibility(catalog, project({ status: "UPGRADING" })))).toEqual([]);
  });
});

describe("resolveTargetVersion", () => {
  const list = listEligibility(catalog, project());
  it("takes a release name as is (eligibility is checked when the upgrade starts)", () => {
    expect(resolveTargetVersion(catalog, "local", list, "supabase-v0.8.2")).toEqual({
      ok: true,
      release: "supabase-v0.8.2",
    });
  });
  it("maps a PostgreSQL major to its preferred release", () => {
    expect(resolveTargetVersion(catalog, "local", list, "17")).toEqual({ ok: true, release: "local-17" });
    expect(resolveTargetVersion(catalog, "local", list, "15")).toEqual({ ok: true, release: "supabase-2026.02" });
  });
  it("refuses a major no release runs, or something that is neither", () => {
    const r = resolveTargetVersion(catalog, "local", list, "16");
    expect(r).toMatchObject({ ok: false, refusal: { code: "unknown_release" } });
    if (!r.ok) expect(r.refusal.message).toMatch(/no release runs PostgreSQL 16 \(eligible releases: .*local-17/);
    expect(resolveTargetVersion(catalog, "local", list, "17-oriole")).toMatchObject({
      ok: false,
      refusal: { message: expect.stringMatching(/neither a release nor a PostgreSQL major/) },
    });
  });
  it("answers why a major is refused (a downgrade, the project's state)", () => {
    const on17 = listEligibility(catalog, project({ release: "local-17" }));
    expect(resolveTargetVersion(catalog, "local-17", on17, "15")).toMatchObject({
      ok: false,
      refusal: { code: "postgres_downgrade" },
    });
    const paused = listEligibility(catalog, project({ status: "INACTIVE", desiredState: "paused" }));
    expect(resolveTargetVersion(catalog, "local", paused, "17")).toMatchObject({
      ok: false,
      refusal: { code: "project_state" },
    });
  });
});
