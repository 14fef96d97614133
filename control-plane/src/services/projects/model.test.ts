import { describe, expect, it } from "vitest";
import { buildReleaseCatalog } from "../../releases/catalog.js";
import { DB_VERSION, dbVersionOf } from "./model.js";

describe("a project's dbVersion follows its release", () => {
  const catalog = buildReleaseCatalog({ defaultRelease: "local" });

  it("names the release's supabase/postgres image version, else its major's", () => {
    expect(dbVersionOf(catalog.get("supabase-2026.02"))).toBe("supabase-postgres-15.8.1.085");
    expect(dbVersionOf(catalog.get("supabase-v0.8.2"))).toBe("supabase-postgres-17.6.1.136");
    expect(dbVersionOf(catalog.get("local"))).toMatch(/^supabase-postgres-15\./);
    expect(dbVersionOf(catalog.get("local-17"))).toMatch(/^supabase-postgres-17\./);
  });

  it("falls back to the default for a release it no longer knows", () => {
    expect(dbVersionOf(undefined)).toBe(DB_VERSION);
  });
});
