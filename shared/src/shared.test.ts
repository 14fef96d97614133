import { describe, expect, it } from "vitest";
import {
  ERROR_CODES,
  newOrgSlug,
  newProjectRef,
  ORG_ROLES,
  OrgSlug,
  PROJECT_STATUSES,
  ProjectRef,
  ProjectStatus,
  prefixedId,
  ROLE_IDS,
  randomString,
  roleAtLeast,
  roleFromId,
  statusForCode,
} from "./index.js";

describe("ids", () => {
  it("project refs are 20 lowercase letters and unique", () => {
    const refs = new Set(Array.from({ length: 500 }, () => newProjectRef()));
    expect(refs.size).toBe(500);
    for (const r of refs) expect(ProjectRef.safeParse(r).success).toBe(true);
  });

  it.each(["abc", "ABCDEFGHIJKLMNOPQRST", "abcdefghijklmnopqrs1", "abcdefghijklmnopqrstu"])("rejects ref %s", (r) => {
    expect(ProjectRef.safeParse(r).success).toBe(false);
  });

  it("org slugs validate", () => {
    expect(OrgSlug.safeParse(newOrgSlug()).success).toBe(true);
    expect(OrgSlug.safeParse("-bad").success).toBe(false);
  });

  it("randomString draws every character of the alphabet, and only those", () => {
    const s = randomString(4000, "abc");
    expect(new Set(s)).toEqual(new Set(["a", "b", "c"]));
    expect(() => randomString(3, "a")).toThrow(RangeError);
  });

  it("prefixed ids carry their prefix", () => {
    expect(prefixedId("host")).toMatch(/^host_[a-z0-9]{20}$/);
  });
});

describe("vocabulary", () => {
  it("project statuses are exactly Studio's", () => {
    expect(PROJECT_STATUSES).toContain("ACTIVE_HEALTHY");
    expect(ProjectStatus.safeParse("RUNNING").success).toBe(false);
  });

  it("roles have stable ids and an order", () => {
    for (const r of ORG_ROLES) expect(roleFromId(ROLE_IDS[r])).toBe(r);
    expect(roleFromId(99)).toBeUndefined();
    expect(roleAtLeast("owner", "developer")).toBe(true);
    expect(roleAtLeast("read_only", "developer")).toBe(false);
  });

  it("every error code maps to an HTTP status", () => {
    for (const code of ERROR_CODES) expect(statusForCode(code)).toBeGreaterThanOrEqual(400);
    expect(statusForCode("not_found")).toBe(404);
  });
});
