import type { OrgRole } from "@supamanager/shared";
import { describe, expect, it } from "vitest";
import { type ContentFacts, type ContentType, canRead, holdDenial, modifyDenial, type Visibility } from "./rules.js";

const ME = 7;
const OTHER = 8;
const viewer = (role: OrgRole) => ({ role, profileId: ME });
const row = (ownerId: number, visibility: Visibility, type: ContentType = "sql"): ContentFacts => ({
  ownerId,
  visibility,
  type,
});

describe("canRead", () => {
  it.each([
    ["own private", row(ME, "user"), true],
    ["own shared", row(ME, "project"), true],
    ["someone else's shared", row(OTHER, "project"), true],
    ["someone else's private", row(OTHER, "user"), false],
  ])("%s → %s for every role", (_name, r, expected) => {
    for (const role of ["owner", "administrator", "developer", "read_only"] as const) {
      expect(canRead(r, viewer(role))).toBe(expected);
    }
  });

  it("a caller without a profile (-1) reads only shared rows", () => {
    expect(canRead(row(OTHER, "user"), { role: "owner", profileId: -1 })).toBe(false);
    expect(canRead(row(OTHER, "project"), { role: "owner", profileId: -1 })).toBe(true);
  });
});

describe("modifyDenial (change or delete an existing row)", () => {
  const cases: [OrgRole, string, ContentFacts, boolean][] = [
    ["owner", "someone else's shared", row(OTHER, "project"), true],
    ["administrator", "someone else's shared", row(OTHER, "project"), true],
    ["developer", "someone else's shared", row(OTHER, "project"), false],
    ["read_only", "someone else's shared", row(OTHER, "project"), false],
    ["developer", "own shared", row(ME, "project"), true],
    ["read_only", "own shared (after a demotion)", row(ME, "project"), false],
    ["read_only", "own private", row(ME, "user"), true],
    ["read_only", "own private report (after a demotion)", row(ME, "user", "report"), true],
    ["developer", "own private", row(ME, "user"), true],
    ["owner", "someone else's private", row(OTHER, "user"), false],
  ];
  it.each(cases)("%s on %s → allowed: %s", (role, _name, r, allowed) => {
    const denial = modifyDenial(r, viewer(role));
    if (allowed) expect(denial).toBeNull();
    else expect(denial).toMatch(/owner|Read-only/i);
  });
});

describe("holdDenial (the state a create or update leads to)", () => {
  const cases: [OrgRole, Visibility, ContentType, boolean][] = [
    ["read_only", "user", "sql", true],
    ["read_only", "project", "sql", false],
    ["read_only", "user", "report", false],
    ["read_only", "user", "log_sql", false],
    ["developer", "project", "sql", true],
    ["developer", "user", "report", true],
    ["administrator", "project", "log_sql", true],
    ["owner", "project", "report", true],
  ];
  it.each(cases)("%s holding %s %s → allowed: %s", (role, visibility, type, allowed) => {
    const denial = holdDenial({ visibility, type }, viewer(role));
    if (allowed) expect(denial).toBeNull();
    else expect(denial).toMatch(/Read-only/);
  });
});
