import { describe, expect, it } from "vitest";
import { buildReleaseCatalog } from "../../../releases/catalog.js";
import { type EligibilityProject, listEligibility } from "../../../services/upgrades/eligibility.js";
import type { UpgradeView } from "../../../services/upgrades/index.js";
import { expectMatchesOperation } from "../../../test-support/openapi.js";
import { v1Eligibility, v1UpgradeStatus } from "./upgrade.js";

// Pure mapping of our releases and upgrades onto the Management API's PostgreSQL vocabulary; the
// routes around them are tested in upgrade.test.ts.
const catalog = buildReleaseCatalog({ defaultRelease: "local" });
const project: EligibilityProject = {
  ref: "abcdefghijklmnopqrst",
  release: "local",
  parts: null,
  computeSize: "large",
  status: "ACTIVE_HEALTHY",
};

describe("v1Eligibility", () => {
  it("offers one target per PostgreSQL major, in the Management API's shape", () => {
    const body = v1Eligibility(catalog, "local", 15, listEligibility(catalog, project));
    expectMatchesOperation("GET", "/v1/projects/{ref}/upgrade/eligibility", 200, body);
    expect(body.eligible).toBe(true);
    expect(body.current_app_version).toBe("supabase-postgres-15 (local)");
    expect(body.target_upgrade_versions).toEqual([
      {
        postgres_version: "17",
        release_channel: "ga",
        app_version: "supabase-postgres-17 (local-17)",
        release: "local-17",
      },
      {
        postgres_version: "15",
        release_channel: "ga",
        app_version: "supabase-postgres-15 (supabase-2026.02)",
        release: "supabase-2026.02",
      },
    ]);
    expect(body.latest_app_version).toBe("supabase-postgres-17 (local-17)");
    expect(body.potential_breaking_changes.join("\n")).toMatch(/Release local-17 runs PostgreSQL 17/);
  });

  it("is not eligible, and the latest version is the current one, when nothing is eligible", () => {
    const body = v1Eligibility(catalog, "local", 15, listEligibility(catalog, { ...project, status: "UPGRADING" }));
    expectMatchesOperation("GET", "/v1/projects/{ref}/upgrade/eligibility", 200, body);
    expect(body).toMatchObject({
      eligible: false,
      target_upgrade_versions: [],
      latest_app_version: "supabase-postgres-15 (local)",
    });
  });
});

describe("v1UpgradeStatus", () => {
  const at = new Date("2026-12-05T10:00:00Z");
  const view = (over: Partial<UpgradeView>): UpgradeView => ({
    id: 7,
    ref: "abcdefghijklmnopqrst",
    fromRelease: "local",
    toRelease: "local-17",
    status: "RUNNING",
    step: "migrating_data",
    failedStep: null,
    error: null,
    backupId: 3,
    createdAt: at,
    updatedAt: new Date(at.getTime() + 60_000),
    ...over,
  });

  it("answers null when the project was never upgraded", () => {
    const body = v1UpgradeStatus(catalog, null);
    expect(body).toEqual({ databaseUpgradeStatus: null });
    expectMatchesOperation("GET", "/v1/projects/{ref}/upgrade/status", 200, body);
  });

  it.each([
    [{ step: "backing_up" }, 0, "0_requested", undefined],
    [{ step: "migrating_data" }, 0, "5_initiated_data_upgrade", undefined],
    [{ step: "health_check" }, 0, "8_attached_volume_to_upgraded_instance", undefined],
    [{ step: "rolling_back", failedStep: "health_check" }, 0, "8_attached_volume_to_upgraded_instance", undefined],
    [{ status: "COMPLETED", step: "done" }, 1, "9_completed_upgrade", undefined],
    [
      { status: "ROLLED_BACK", step: "done", failedStep: "migrating_data", error: "pg_upgrade failed" },
      2,
      "5_initiated_data_upgrade",
      "5_data_upgrade_completion_failed",
    ],
    [
      { status: "FAILED", step: "done", failedStep: null, error: "lease expired" },
      2,
      "1_started",
      "8_upgrade_completion_failed",
    ],
  ] as const)("%o → status %i, %s, error %s", (over, status, progress, error) => {
    const body = v1UpgradeStatus(catalog, view(over as Partial<UpgradeView>));
    expectMatchesOperation("GET", "/v1/projects/{ref}/upgrade/status", 200, body);
    const s = body.databaseUpgradeStatus;
    expect(s).toMatchObject({
      status,
      progress,
      target_version: 17,
      initiated_at: "2026-12-05T10:00:00.000Z",
      latest_status_at: "2026-12-05T10:01:00.000Z",
      tracking_id: "7",
    });
    expect(s?.error).toBe(error);
  });
});
