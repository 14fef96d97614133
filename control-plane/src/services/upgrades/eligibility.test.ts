import { describe, expect, it } from "vitest";
import { ApiError } from "../../errors.js";
import { buildReleaseCatalog } from "../../releases/catalog.js";
import { LOCAL_RELEASE } from "../../releases/local.js";
import { assertEligible, checkEligibility, type EligibilityProject, listEligibility } from "./eligibility.js";

// The built-in releases: local (PostgreSQL 15, no parts, nano), supabase-2026.02 (15, every part,
// medium) and supabase-v0.8.2 (17, every part, small) — plus two test releases from a releases file.
const local17 = {
  ...structuredClone(LOCAL_RELEASE),
  name: "local-17",
  database: { service: "db", postgresMajor: 17, volume: "db-data" },
};
const noFacts = { ...structuredClone(LOCAL_RELEASE), name: "local-nofacts" } as Record<string, unknown>;
delete noFacts.database;
const catalog = buildReleaseCatalog({ defaultRelease: "local", releasesFile: [local17, noFacts] });

function project(over: Partial<EligibilityProject> = {}): EligibilityProject {
  return {
    ref: "abcdefghijklmnopqrst",
    release: "local",
    parts: null,
    computeSize: "nano",
    status: "ACTIVE_HEALTHY",
    desiredState: "running",
    ...over,
  };
}

function byName(p: EligibilityProject) {
  return Object.fromEntries(listEligibility(catalog, p).map((e) => [e.release, e]));
}

describe("listEligibility", () => {
  it("lists every release of the catalog, the project's own refused as same_release", () => {
    const list = listEligibility(catalog, project());
    expect(list.map((e) => e.release).sort()).toEqual(catalog.names().sort());
    const all = byName(project());
    expect(all.local?.refusal?.code).toBe("same_release");
    expect(all["local-17"]).toMatchObject({ eligible: true, refusal: null, postgresMajor: 17, majorUpgrade: true });
  });

  it("refuses a target whose minimum memory is above the project's compute size, naming the size it needs", () => {
    const all = byName(project({ computeSize: "nano" }));
    expect(all["supabase-2026.02"]?.refusal?.code).toBe("compute_too_small");
    expect(all["supabase-2026.02"]?.refusal?.message).toMatch(/at least the medium compute size.*nano is too small/);
    expect(all["supabase-v0.8.2"]?.refusal?.code).toBe("compute_too_small");
    const medium = byName(project({ computeSize: "medium" }));
    expect(medium["supabase-2026.02"]).toMatchObject({ eligible: true, postgresMajor: 15, majorUpgrade: false });
    expect(medium["supabase-v0.8.2"]).toMatchObject({ eligible: true, postgresMajor: 17, majorUpgrade: true });
    // A project on its release's default parts gets the target's default parts.
    expect(medium["supabase-v0.8.2"]?.parts).toEqual(["realtime", "storage", "functions"]);
    // The stored choice stays: a project on local (no parts) runs the target's core services only.
    expect(byName(project({ computeSize: "small", parts: [] }))["supabase-v0.8.2"]).toMatchObject({
      eligible: true,
      parts: [],
    });
    // A project that chose its parts on a release that has them keeps exactly them.
    const chose = byName(project({ release: "supabase-2026.02", computeSize: "medium", parts: ["storage"] }));
    expect(chose["supabase-v0.8.2"]?.parts).toEqual(["storage"]);
  });

  it("refuses a PostgreSQL major downgrade", () => {
    const all = byName(project({ release: "supabase-v0.8.2", computeSize: "large" }));
    expect(all.local?.refusal?.code).toBe("postgres_downgrade");
    expect(all.local?.refusal?.message).toMatch(/PostgreSQL 15, older than the project's PostgreSQL 17/);
    expect(all["supabase-2026.02"]?.refusal?.code).toBe("postgres_downgrade");
    expect(all["local-17"]?.refusal?.code).toBe("missing_parts");
  });

  it("refuses a release without database facts, to it and from it", () => {
    expect(byName(project())["local-nofacts"]?.refusal).toMatchObject({ code: "no_database_facts" });
    const from = byName(project({ release: "local-nofacts" }));
    expect(from["local-17"]?.refusal?.code).toBe("no_database_facts");
    expect(from["local-17"]?.refusal?.message).toMatch(/Release local-nofacts does not describe its database/);
  });

  it("refuses a target without the parts the project runs, and carries the parts it would run", () => {
    const prod = project({ release: "supabase-2026.02", computeSize: "medium", parts: ["logs", "storage"] });
    const all = byName(prod);
    expect(all["local-17"]?.refusal).toMatchObject({ code: "missing_parts" });
    expect(all["local-17"]?.refusal?.message).toMatch(/has no logs, storage/);
    // v0.8.2 has logs as a part, though not by default: the project keeps the parts it runs.
    expect(all["supabase-v0.8.2"]).toMatchObject({ eligible: true, parts: ["logs", "storage"] });
    // No stored choice → the target's default parts.
    const defaults = byName({ ...prod, parts: null });
    expect(defaults["supabase-v0.8.2"]?.parts).toEqual(["realtime", "storage", "functions"]);
  });

  it("refuses the memory of the parts the project runs, not the target's default parts", () => {
    // v0.8.2 with logs needs more than its default minimum (small).
    const all = byName(project({ release: "supabase-2026.02", computeSize: "small", parts: ["logs"] }));
    expect(all["supabase-v0.8.2"]?.refusal?.code).toBe("compute_too_small");
    const without = byName(project({ release: "supabase-2026.02", computeSize: "small", parts: ["storage"] }));
    expect(without["supabase-v0.8.2"]?.eligible).toBe(true);
  });

  it("names an unknown current release", () => {
    const all = byName(project({ release: "gone" }));
    expect(all["local-17"]?.refusal?.code).toBe("current_release_unknown");
    expect(all["local-17"]?.refusal?.message).toMatch(/runs release gone, which this control plane no longer knows/);
  });

  it.each([
    [{ status: "INACTIVE", desiredState: "paused" }, /is paused; restore it/],
    [{ status: "ACTIVE_HEALTHY", desiredState: "paused" }, /is paused/],
    [{ status: "UPGRADING" }, /already upgrading; wait/],
    [{ status: "RESTORING" }, /being restored from a backup/],
    [{ status: "COMING_UP" }, /is COMING_UP; wait until it is ACTIVE_HEALTHY/],
    [{ status: "ACTIVE_UNHEALTHY" }, /is ACTIVE_UNHEALTHY, not ACTIVE_HEALTHY; fix it first/],
    [{ status: "INIT_FAILED" }, /is INIT_FAILED/],
    [{ status: "GOING_DOWN", desiredState: "deleted" }, /being deleted/],
  ] as const)("refuses every target while the project is %o", (state, message) => {
    for (const e of listEligibility(catalog, project(state))) {
      expect(e.eligible).toBe(false);
      if (e.release !== "local" && e.release !== "local-nofacts" && !e.release.startsWith("supabase")) {
        expect(e.refusal).toMatchObject({ code: "project_state" });
        expect(e.refusal?.message).toMatch(message);
      }
    }
  });

  it("refuses while the host is offline, only when the caller knows it is", () => {
    expect(byName(project({ hostOnline: false }))["local-17"]?.refusal?.code).toBe("host_offline");
    expect(byName(project({ hostOnline: true }))["local-17"]?.eligible).toBe(true);
  });

  it("names the release's reason before the project's state (the reason that stays after fixing the state)", () => {
    const all = byName(
      project({ release: "supabase-v0.8.2", computeSize: "large", status: "INACTIVE", desiredState: "paused" }),
    );
    expect(all.local?.refusal?.code).toBe("postgres_downgrade");
  });
});

describe("checkEligibility / assertEligible", () => {
  it("answers ok with the target's eligibility", () => {
    const r = checkEligibility(catalog, project(), "local-17");
    expect(r).toMatchObject({ ok: true, eligibility: { release: "local-17", majorUpgrade: true, parts: [] } });
  });

  it("refuses an unknown target, naming the known ones", () => {
    const r = checkEligibility(catalog, project(), "nope");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.refusal.message).toMatch(/No release named nope; known: local, .*local-17/);
  });

  it("throws 400 for a target that cannot be and 409 for a state that may change", () => {
    const thrown = (p: EligibilityProject, target: string) => {
      try {
        assertEligible(catalog, p, target);
      } catch (e) {
        return e;
      }
      throw new Error("expected a refusal");
    };
    const downgrade = thrown(project({ release: "local-17" }), "local");
    expect(downgrade).toBeInstanceOf(ApiError);
    expect(downgrade).toMatchObject({ status: 400, code: "bad_request" });
    expect(thrown(project({ status: "UPGRADING" }), "local-17")).toMatchObject({ status: 409, code: "conflict" });
    expect(thrown(project(), "nope")).toMatchObject({ status: 400 });
    expect(assertEligible(catalog, project(), "local-17").release).toBe("local-17");
  });
});
