import { describe, expect, it } from "vitest";
import { compareFingerprints, type Fingerprint, ident, majorOf, withoutExistingRoles } from "./major-version.js";

describe("the data step's pure parts", () => {
  it("leaves out exactly the CREATE ROLE of roles the new cluster has, quoted or not", () => {
    const globals = [
      "SET default_transaction_read_only = off;",
      "CREATE ROLE postgres;",
      "ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;",
      'CREATE ROLE "Mixed ""Case""";',
      'ALTER ROLE "Mixed ""Case""" WITH NOSUPERUSER LOGIN;',
      "CREATE ROLE app_reader;",
      "CREATE ROLE postgres_extra;",
      "GRANT app_reader TO postgres_extra GRANTED BY postgres;",
    ].join("\n");
    const { script, skipped } = withoutExistingRoles(globals, new Set(["postgres", 'Mixed "Case"']));
    expect(skipped).toEqual(["postgres", 'Mixed "Case"']);
    expect(script.split("\n")).toEqual([
      "SET default_transaction_read_only = off;",
      "ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;",
      'ALTER ROLE "Mixed ""Case""" WITH NOSUPERUSER LOGIN;',
      "CREATE ROLE app_reader;",
      "CREATE ROLE postgres_extra;",
      "GRANT app_reader TO postgres_extra GRANTED BY postgres;",
    ]);
  });

  it("reads the major of server_version and server_version_num", () => {
    expect(majorOf("15.18 (Debian 15.18-0+deb12u1)")).toBe(15);
    expect(majorOf("17.6")).toBe(17);
    expect(majorOf("170006")).toBe(17);
    expect(() => majorOf("unknown")).toThrow(/cannot tell/);
  });

  it("quotes identifiers", () => {
    expect(ident('we"ird')).toBe('"we""ird"');
  });

  it("names every difference between before and after", () => {
    const before: Fingerprint = {
      extensions: ["pg_trgm", "plpgsql"],
      relations: ["r public.a", "v public.b"],
      functions: ["f(integer)"],
      sequences: { "public.a_id_seq": 10 },
      rows: { "public.a": 10 },
    };
    expect(compareFingerprints(before, structuredClone(before))).toEqual([]);
    const after: Fingerprint = {
      extensions: ["plpgsql"],
      relations: ["r public.a", "v public.b", "v public.c"],
      functions: ["f(integer)"],
      sequences: { "public.a_id_seq": 9 },
      rows: { "public.a": 9 },
    };
    expect(compareFingerprints(before, after)).toEqual([
      "extension pg_trgm is missing",
      "relation v public.c is new",
      "sequence public.a_id_seq is at 9, was 10",
      "table public.a has 9 rows, had 10",
    ]);
  });
});
