import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { expectMatchesOperation } from "./openapi.js";

const present = existsSync(fileURLToPath(new URL("../../../../shared/contracts/api_v1_openapi.json", import.meta.url)));

describe.skipIf(!present)("expectMatchesOperation", () => {
  it("accepts a body that matches, resolving $refs and OpenAPI nullable", () => {
    expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys", 200, [
      { name: "anon", api_key: null, type: "legacy" },
    ]);
    expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys/legacy", 200, { enabled: true });
  });

  it.each([
    ["a missing required field", [{ api_key: "x" }]],
    ["a value outside an enum (through a $ref)", [{ name: "anon", type: "other" }]],
    ["an object where an array is declared", { name: "anon" }],
  ])("fails on %s", (_name, body) => {
    expect(() => expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys", 200, body)).toThrow(/does not match/);
  });

  it("fails loudly on an operation the document does not have", () => {
    expect(() => expectMatchesOperation("GET", "/v1/nope", 200, {})).toThrow(/No operation/);
  });
});
