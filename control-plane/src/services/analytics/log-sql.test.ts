import { describe, expect, it } from "vitest";
import { parseLogSql, searchRegex } from "./log-sql.js";

/** Which of Studio's generated log queries a SQL string is (Logs.utils.ts), and the search guard. */

describe("parseLogSql", () => {
  it.each([
    [
      "select id, auth_logs.timestamp, event_message from auth_logs\n  \n  order by timestamp desc\n  limit 50\n  ",
      { kind: "preview", table: "auth_logs", limit: 50 },
    ],
    [
      "SELECT count(*) as count FROM edge_logs cross join unnest(metadata) as m ",
      { kind: "count", table: "edge_logs" },
    ],
    [
      "select id, timestamp, event_message, metadata from postgres_logs where id = 'ab-12' limit 1",
      { kind: "single", table: "postgres_logs", id: "ab-12" },
    ],
    [
      "select identifier, postgres_logs.timestamp, id, event_message, parsed.error_severity, parsed.query\nfrom postgres_logs\n  cross join unnest(metadata) as m\n  cross join unnest(m.parsed) as parsed\nwhere (parsed.application_name = 'pg_cron' OR event_message LIKE '%cron job%')\norder by timestamp desc\nlimit 100\n",
      { kind: "preview", table: "pg_cron_logs", limit: 100 },
    ],
    [
      "select id, edge_logs.timestamp, event_message from edge_logs order by timestamp desc limit 999999",
      { kind: "preview", limit: 1000 },
    ],
  ])("%#: recognises Studio's query", (sql, expected) => {
    expect(parseLogSql(sql)).toMatchObject(expected);
  });
});

describe("searchRegex", () => {
  it("accepts what people type into the search box", () => {
    expect(searchRegex("relation .* does not exist").test('relation "x" does not exist')).toBe(true);
    expect(searchRegex("ERROR|FATAL").test("FATAL: x")).toBe(true);
  });

  it.each([
    ["a repeated group that repeats", "(a+)+$"],
    ["a repeated alternation with a quantifier", "(x*|y)*"],
    ["a back-reference", "(a)\\1"],
    ["a pattern past 256 characters", "a".repeat(257)],
    ["an invalid pattern", "(unclosed"],
  ])("refuses %s with a 400", (_n, pattern) => {
    expect(() => searchRegex(pattern)).toThrow(expect.objectContaining({ status: 400 }));
  });
});
