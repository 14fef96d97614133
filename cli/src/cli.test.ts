import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { commandHelp, groupHelp, resolve } from "./args.js";
import { normaliseUrl } from "./client.js";
import { agentsBehind, COMMANDS, GROUPS, hostProjectsTable, hostsTable, projectsTable } from "./commands.js";
import { configPath, readConfig, removeConfig, writeConfig } from "./config.js";
import { CliError } from "./errors.js";
import { ago, bytes, table, timestamp } from "./format.js";
import { main } from "./main.js";

const run = (argv: string[]) => resolve(argv, COMMANDS);

describe("argument parsing", () => {
  it("finds the command and its arguments, with options anywhere", () => {
    const r = run(["--json", "hosts", "cordon", "--url", "http://cp:1", "host_abc"]);
    expect(r.kind).toBe("run");
    if (r.kind !== "run") return;
    expect(r.command.path).toEqual(["hosts", "cordon"]);
    expect(r.input).toMatchObject({ args: { id: "host_abc" }, json: true, url: "http://cp:1" });
  });

  it("reads command options with their types", () => {
    const r = run(["projects", "create", "--org", "acme", "--name", "n", "--wait", "--size", "nano"]);
    if (r.kind !== "run") throw new Error("expected a command");
    expect(r.input.values).toMatchObject({ org: "acme", name: "n", wait: true, size: "nano" });
    expect(r.input.json).toBe(false);
  });

  it.each([
    [["--help"], []],
    [["-h"], []],
    [["help"], []],
    [["hosts", "--help"], ["hosts"]],
    [["help", "hosts"], ["hosts"]],
    [
      ["hosts", "list", "-h"],
      ["hosts", "list"],
    ],
    [
      ["help", "projects", "create"],
      ["projects", "create"],
    ],
  ])("%j shows the help of %j", (argv, path) => {
    const r = run(argv);
    expect(r).toMatchObject({ kind: "help", path });
    expect((r as { error?: string }).error).toBeUndefined();
  });

  it.each([
    [[], "missing command"],
    [["hosts"], '"hosts" needs a subcommand'],
    [["hosts", "nope"], 'unknown command "hosts nope"'],
    [["nope"], 'unknown command "nope"'],
  ])("%j is help with an error", (argv, error) => {
    expect(run(argv)).toMatchObject({ kind: "help", error });
  });

  it.each([
    [["hosts", "cordon"], /missing <id>/],
    [["hosts", "cordon", "a", "b"], /unexpected argument "b"/],
    [["hosts", "list", "--force"], /Unknown option '--force'/],
    [["hosts", "join-token", "--region"], /argument missing/],
    [["projects", "list", "--json=yes"], /does not take an argument/],
  ])("%j is a usage error", (argv, message) => {
    let caught: unknown;
    try {
      run(argv);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CliError);
    expect((caught as CliError).exitCode).toBe(1);
    expect((caught as CliError).message).toMatch(message);
  });

  it("every command has a summary and help naming its arguments and options", () => {
    for (const c of COMMANDS) {
      const help = commandHelp(c);
      expect(help).toContain(`Usage: supamanager ${c.path.join(" ")}`);
      for (const a of c.args ?? []) expect(help).toContain(`<${a.name}>`);
      for (const o of Object.keys(c.options ?? {})) expect(help).toContain(`--${o}`);
      expect(c.summary.length).toBeGreaterThan(10);
    }
    for (const g of Object.keys(GROUPS)) expect(groupHelp([g], COMMANDS, GROUPS)).toContain(GROUPS[g]);
    expect(groupHelp([], COMMANDS, GROUPS)).toMatch(/Exit codes: 0 ok, 1 usage, 2 .*, 3 .*, 4 .*/);
  });
});

describe("formatting", () => {
  it("aligns tables and shows missing values as -", () => {
    expect(
      table(
        ["A", "LONGER", "C"],
        [
          ["xx", null, 3],
          ["y", "z", undefined],
        ],
      ),
    ).toBe("A   LONGER  C\nxx  -       3\ny   z       -");
  });

  it.each([
    [0, "0B"],
    [1023, "1023B"],
    [1536, "1.5K"],
    [512 * 2 ** 20, "512M"],
    [64 * 2 ** 30, "64G"],
    [1.25 * 2 ** 40, "1.3T"],
    [null, "-"],
    [-1, "-"],
  ])("bytes(%s) = %s", (n, text) => {
    expect(bytes(n)).toBe(text);
  });

  it("formats timestamps and ages", () => {
    expect(timestamp("2024-05-01T10:20:30.123Z")).toBe("2024-05-01 10:20:30Z");
    expect(timestamp(null)).toBe("-");
    const now = Date.parse("2024-05-01T12:00:00Z");
    expect(ago("2024-05-01T11:59:50Z", now)).toBe("10s ago");
    expect(ago("2024-05-01T11:55:00Z", now)).toBe("5m ago");
    expect(ago("2024-05-01T09:00:00Z", now)).toBe("3h ago");
    expect(ago("2024-04-28T12:00:00Z", now)).toBe("3d ago");
    expect(ago(null, now)).toBe("never");
  });

  it("shows each host's agent version and which agents are behind, with why", () => {
    const base = {
      name: "box",
      region: "eu-1",
      status: "online",
      cordoned: false,
      draining: false,
      capacity: { cpus: 1, mem_total_bytes: null, mem_free_bytes: null, mem_reserved_bytes: null, load1: null },
      project_count: 0,
      last_seen_at: null,
      agent_wanted_version: "0.2.0",
    };
    const hosts = [
      {
        ...base,
        id: "host_aaaaaaaaaaaaaaaaaaaa",
        agent_version: "0.2.0",
        agent_status: "current",
        agent_behind: false,
      },
      {
        ...base,
        id: "host_bbbbbbbbbbbbbbbbbbbb",
        agent_version: "0.1.0",
        agent_status: "update_pending",
        agent_behind: true,
        agent_status_reason: "runs 0.1.0; 0.2.0 is wanted and installs when the agent next connects",
      },
      {
        ...base,
        id: "host_cccccccccccccccccccc",
        agent_version: "0.1.0",
        agent_status: "update_failed",
        agent_behind: true,
        agent_status_reason: "the update from 0.1.0 to 0.2.0 failed: version 0.2.0 exited with code 1",
      },
    ];
    const rows = hostsTable(hosts).split("\n");
    expect(rows[0]).toMatch(/\sAGENT$/);
    expect(rows[1]).toMatch(/\s0\.2\.0$/);
    expect(rows[2]).toMatch(/\s0\.1\.0 → 0\.2\.0 pending$/);
    expect(rows[3]).toMatch(/\s0\.1\.0 \(0\.2\.0 failed\)$/);
    expect(agentsBehind(hosts)).toBe(
      [
        "Agents behind (2):",
        "  host_bbbbbbbbbbbbbbbbbbbb box: runs 0.1.0; 0.2.0 is wanted and installs when the agent next connects",
        "  host_cccccccccccccccccccc box: the update from 0.1.0 to 0.2.0 failed: version 0.2.0 exited with code 1",
      ].join("\n"),
    );
    expect(agentsBehind([hosts[0] as (typeof hosts)[number]])).toBeNull();
  });

  it("renders hosts and projects tables", () => {
    const now = Date.parse("2024-05-01T12:00:00Z");
    const hosts = hostsTable(
      [
        {
          id: "host_aaaaaaaaaaaaaaaaaaaa",
          name: "box",
          region: "eu-1",
          status: "online",
          cordoned: true,
          draining: false,
          reachability: "tunnel",
          capacity: {
            cpus: 4,
            mem_total_bytes: 8 * 2 ** 30,
            mem_free_bytes: 6 * 2 ** 30,
            mem_reserved_bytes: 2 ** 30,
            load1: 0.5,
          },
          project_count: 2,
          projects: [
            { ref: "abcdefghijklmnopqrst", name: "shop", url: "https://abcdefghijklmnopqrst.tunnel.example.net" },
            { ref: "bbcdefghijklmnopqrst", name: "new", url: null },
          ],
          last_seen_at: "2024-05-01T11:59:58Z",
        },
      ],
      now,
    );
    expect(hosts.split("\n")[1]).toMatch(
      /^host_a{20}\s+box\s+eu-1\s+online\s+cordoned\s+tunnel\s+4\s+6G\/8G\s+1G\s+0\.50\s+2\s+2s ago\s+-$/,
    );
    expect(
      hostProjectsTable([
        {
          id: "host_aaaaaaaaaaaaaaaaaaaa",
          name: "box",
          region: "eu-1",
          status: "online",
          cordoned: false,
          draining: false,
          capacity: { cpus: 1, mem_total_bytes: null, mem_free_bytes: null, mem_reserved_bytes: null, load1: null },
          project_count: 2,
          projects: [
            { ref: "abcdefghijklmnopqrst", name: "shop", url: "https://abcdefghijklmnopqrst.tunnel.example.net" },
            { ref: "bbcdefghijklmnopqrst", name: "new", url: null },
          ],
          last_seen_at: null,
        },
      ]).split("\n"),
    ).toEqual([
      expect.stringMatching(/^HOST\s+PROJECT\s+NAME\s+URL$/),
      expect.stringMatching(
        /^host_a{20}\s+abcdefghijklmnopqrst\s+shop\s+https:\/\/abcdefghijklmnopqrst\.tunnel\.example\.net$/,
      ),
      expect.stringMatching(/^host_a{20}\s+bbcdefghijklmnopqrst\s+new\s+\(not yet\)$/),
    ]);
    expect(
      projectsTable([
        {
          ref: "abcdefghijklmnopqrst",
          name: "shop",
          organization_slug: null,
          status: "INACTIVE",
          region: "eu-1",
          compute_size: "nano",
          inserted_at: "2024-05-01T10:00:00Z",
        },
      ]).split("\n")[1],
    ).toBe("abcdefghijklmnopqrst  shop  -    INACTIVE  eu-1    nano  2024-05-01 10:00:00Z");
  });
});

describe("urls and the stored login", () => {
  it.each([
    ["http://cp.example:8080/", "http://cp.example:8080"],
    ["https://cp.example/base//?x=1#y", "https://cp.example/base"],
  ])("normalises %s", (input, url) => {
    expect(normaliseUrl(input)).toBe(url);
  });

  it.each(["cp.example", "ftp://cp.example", ""])("refuses %j (usage)", (input) => {
    expect(() => normaliseUrl(input)).toThrow(/must be an http\(s\) URL/);
  });

  it("finds the config file from the environment", () => {
    expect(configPath({ SUPAMANAGER_CONFIG: "/x/c.json", HOME: "/h" })).toBe("/x/c.json");
    expect(configPath({ XDG_CONFIG_HOME: "/xdg", HOME: "/h" })).toBe("/xdg/supamanager/config.json");
    expect(configPath({ HOME: "/h" })).toBe("/h/.config/supamanager/config.json");
  });

  it("writes the config with mode 0600 in a 0700 directory, reads it back, removes it", () => {
    const dir = mkdtempSync(join(tmpdir(), "supamanager-cli-unit-"));
    try {
      const path = join(dir, "sub", "config.json");
      writeConfig(path, { url: "http://cp", token: "sbp_x" });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, "sub")).mode & 0o777).toBe(0o700);
      expect(readConfig(path)).toEqual({ url: "http://cp", token: "sbp_x" });
      expect(removeConfig(path)).toBe(true);
      expect(readConfig(path)).toBeUndefined();
      expect(removeConfig(path)).toBe(false);
      writeFileSync(path, "{not json");
      expect(() => readConfig(path)).toThrow(/login/);
      writeFileSync(path, JSON.stringify({ url: "http://cp" }));
      expect(() => readConfig(path)).toThrow(/not a supamanager configuration/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("main", () => {
  const capture = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    let stdout = "";
    let stderr = "";
    const code = await main(argv, {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      env,
    });
    return { code, stdout, stderr };
  };

  it("prints help on stdout with exit 0, usage errors on stderr with exit 1", async () => {
    expect(await capture(["--help"])).toMatchObject({ code: 0, stdout: expect.stringContaining("Commands:") });
    const bad = await capture(["hosts", "frob"]);
    expect(bad).toMatchObject({ code: 1, stdout: "" });
    expect(bad.stderr).toMatch(/supamanager: unknown command "hosts frob"/);
  });

  it("--json puts the error on stdout as JSON too", async () => {
    const r = await capture(["orgs", "list", "--json"], { SUPAMANAGER_CONFIG: "/nonexistent/supamanager.json" });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ error: { message: expect.stringMatching(/not logged in/), exit_code: 1 } });
  });

  it("projects logs calls the API: an unreachable control plane is exit 3", async () => {
    const r = await capture(["projects", "logs", "abcdefghijklmnopqrst"], {
      SUPAMANAGER_URL: "http://127.0.0.1:1",
      SUPAMANAGER_TOKEN: "x",
    });
    expect(r.code).toBe(3);
  });
});
