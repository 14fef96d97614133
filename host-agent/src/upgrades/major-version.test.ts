import { describe, expect, it } from "vitest";
import {
  compareFingerprints,
  type Fingerprint,
  ident,
  majorOf,
  tolerableRestoreErrors,
  withoutExistingRoles,
} from "./major-version.js";

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

  it("tolerates only failed privileges on system functions the new major does not have", () => {
    const acl = (fn: string) =>
      [
        `pg_restore: error: could not execute query: ERROR:  function pg_catalog.${fn}(name, name, boolean, boolean) does not exist`,
        `Command was: REVOKE ALL ON FUNCTION pg_catalog.${fn}(slot_name name, plugin name, temporary boolean, twophase boolean, OUT slot_name name, OUT lsn pg_lsn) FROM PUBLIC;`,
      ].join("\n");
    const two = [
      acl("pg_create_logical_replication_slot"),
      acl("pg_other_slot_fn"),
      "pg_restore: warning: errors ignored on restore: 2",
      "",
    ].join("\n");
    expect(tolerableRestoreErrors(two)).toEqual([
      expect.stringMatching(/^REVOKE ALL ON FUNCTION pg_catalog\.pg_create_logical_replication_slot\(/),
      expect.stringMatching(/^REVOKE ALL ON FUNCTION pg_catalog\.pg_other_slot_fn\(/),
    ]);
    // Fewer explained errors than pg_restore counted (the tail lost some): not tolerated.
    expect(tolerableRestoreErrors(two.replace("restore: 2", "restore: 3"))).toBeNull();
    // Any other error: not tolerated.
    const other = [
      acl("pg_create_logical_replication_slot"),
      'pg_restore: error: could not execute query: ERROR:  relation "public.t" does not exist',
      "Command was: COPY public.t (id) FROM stdin;",
      "pg_restore: warning: errors ignored on restore: 2",
    ].join("\n");
    expect(tolerableRestoreErrors(other)).toBeNull();
    // A privilege on a user's own function that failed is not tolerated either.
    const userFn = [
      "pg_restore: error: could not execute query: ERROR:  function public.f(integer) does not exist",
      "Command was: GRANT ALL ON FUNCTION public.f(integer) TO app;",
      "pg_restore: warning: errors ignored on restore: 1",
    ].join("\n");
    expect(tolerableRestoreErrors(userFn)).toBeNull();
    expect(tolerableRestoreErrors("pg_restore: error: connection to server failed")).toBeNull();
  });
});
