import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentUpdate } from "@supamanager/shared";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { decideUpdate, judgeTrial, MAX_TRIAL_STARTS } from "./decide.js";
import { installVersion, matchesIntegrity, resolveSource, sha256HexToIntegrity, UpdateError } from "./install.js";
import { superviseVersion } from "./launcher.js";
import { EMPTY_STATE, type Install, readUpdateState, writeUpdateState } from "./state.js";

const npm = (version: string): AgentUpdate => ({
  version,
  source: { kind: "npm", registry: "https://registry.npmjs.org", package: "supamanager-agent" },
  deadlineSeconds: 60,
});

describe("deciding on the wanted agent version", () => {
  const base = { running: "1.0.0", baseVersion: "1.0.0", state: EMPTY_STATE, runningJobs: 0 };

  it("does nothing when nothing or the running version is wanted", () => {
    expect(decideUpdate({ ...base, wanted: undefined })).toEqual({ action: "none" });
    expect(decideUpdate({ ...base, wanted: npm("1.0.0") })).toEqual({ action: "none" });
  });

  it("installs another version, newer or older (the control plane's pin wins)", () => {
    expect(decideUpdate({ ...base, wanted: npm("1.1.0") })).toEqual({ action: "install", update: npm("1.1.0") });
    expect(decideUpdate({ ...base, wanted: npm("0.9.0") })).toEqual({ action: "install", update: npm("0.9.0") });
  });

  it("does not retry a version that failed here, but does try another one", () => {
    const state = { failure: { version: "1.1.0", reason: "exited with code 1", at: "2026-01-01T00:00:00Z" } };
    const skip = decideUpdate({ ...base, state, wanted: npm("1.1.0") });
    expect(skip.action).toBe("skip");
    expect(skip.action === "skip" && skip.reason).toMatch(/failed here before \(exited with code 1\)/);
    expect(decideUpdate({ ...base, state, wanted: npm("1.1.1") }).action).toBe("install");
  });

  it("waits while jobs run (their work would die with the process)", () => {
    const d = decideUpdate({ ...base, runningJobs: 2, wanted: npm("1.1.0") });
    expect(d).toEqual({ action: "wait", reason: "2 job(s) running; updating once they finish" });
  });

  it("switches back to the base install instead of downloading it again", () => {
    expect(decideUpdate({ ...base, running: "1.1.0", wanted: npm("1.0.0") })).toEqual({ action: "switch-to-base" });
  });
});

describe("judging a version on trial", () => {
  const t = { version: "1.1.0", healthy: false, exit: null, elapsedMs: 1000, deadlineSeconds: 60, starts: 1 };

  it("keeps it once it reconnected, whatever happens after", () => {
    expect(judgeTrial({ ...t, healthy: true, exit: { code: 1, signal: null } })).toEqual({ keep: true });
  });

  it("waits while it runs within its deadline", () => {
    expect(judgeTrial(t)).toBeNull();
  });

  it("rolls back when it exits first, misses the deadline, or keeps being restarted", () => {
    expect(judgeTrial({ ...t, exit: { code: 1, signal: null } })).toEqual({
      keep: false,
      reason: "version 1.1.0 exited with code 1 before reconnecting to the control plane",
    });
    expect(judgeTrial({ ...t, exit: { code: null, signal: "SIGSEGV" } })).toMatchObject({
      reason: "version 1.1.0 was killed by SIGSEGV before reconnecting to the control plane",
    });
    expect(judgeTrial({ ...t, elapsedMs: 60_000 })).toEqual({
      keep: false,
      reason: "version 1.1.0 did not reconnect to the control plane within 60 s",
    });
    expect(judgeTrial({ ...t, starts: MAX_TRIAL_STARTS + 1 })).toMatchObject({ keep: false });
  });
});

describe("checksums", () => {
  const data = new TextEncoder().encode("a package");
  it("checks sha512 and sha256 Subresource Integrity, and converts a hex sha256", () => {
    const sha512 = `sha512-${createHash("sha512").update(data).digest("base64")}`;
    const hex = createHash("sha256").update(data).digest("hex");
    expect(matchesIntegrity(data, sha512)).toBe(true);
    expect(matchesIntegrity(data, sha256HexToIntegrity(hex))).toBe(true);
    expect(matchesIntegrity(new TextEncoder().encode("another package"), sha512)).toBe(false);
    expect(matchesIntegrity(data, "md5-abc")).toBe(false);
  });
});

/** A minimal package as `npm pack` lays it out, whose CLI says `version` (or `says`). */
async function pack(dir: string, version: string, opts: { says?: string; run?: string } = {}): Promise<Buffer> {
  const root = await mkdtemp(join(dir, "pack-"));
  await mkdir(join(root, "package/dist"), { recursive: true });
  await writeFile(
    join(root, "package/package.json"),
    JSON.stringify({ name: "supamanager-agent", version, type: "module", bin: { "supamanager-agent": "dist/cli.js" } }),
  );
  await writeFile(
    join(root, "package/dist/cli.js"),
    `if (process.argv[2] === "--version") { console.log(${JSON.stringify(opts.says ?? version)}); process.exit(0); }\n${opts.run ?? "process.exit(0);"}\n`,
  );
  const file = join(root, "p.tgz");
  execFileSync("tar", ["-czf", file, "-C", root, "package"]);
  return readFile(file);
}

const sri = (data: Buffer) => `sha512-${createHash("sha512").update(data).digest("base64")}`;

describe("installing a version", () => {
  let server: Server;
  let url: string;
  let dir: string;
  const files = new Map<string, { status?: number; body: Buffer | string }>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "agent-update-"));
    server = createServer((req, res) => {
      const f = files.get(req.url ?? "");
      if (!f) return void res.writeHead(404).end("{}");
      res.writeHead(f.status ?? 200).end(f.body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  let dataDir: string;
  beforeEach(async () => {
    files.clear();
    dataDir = await mkdtemp(join(dir, "data-"));
  });

  const fromUrl = (version: string, integrity: string): AgentUpdate => ({
    version,
    source: { kind: "url", url: `${url}/p-${version}.tgz`, integrity },
    deadlineSeconds: 30,
  });

  it("reads the npm registry's dist.tarball and dist.integrity (scoped names encoded as npm does)", async () => {
    const tgz = await pack(dir, "2.0.0");
    files.set("/@acme%2fagent/2.0.0", {
      body: JSON.stringify({
        name: "@acme/agent",
        version: "2.0.0",
        dist: { tarball: `${url}/t.tgz`, integrity: `sha1-abc ${sri(tgz)}` },
      }),
    });
    const update: AgentUpdate = {
      version: "2.0.0",
      source: { kind: "npm", registry: `${url}/`, package: "@acme/agent" },
      deadlineSeconds: 30,
    };
    expect(await resolveSource(update)).toEqual({ tarball: `${url}/t.tgz`, integrity: sri(tgz) });
    files.set("/t.tgz", { body: tgz });
    const install = await installVersion({ dataDir, update, logger: memoryLogger() });
    expect(install.version).toBe("2.0.0");
    expect(install.cli).toBe(join(install.dir, "dist/cli.js"));
  });

  it("refuses a registry version without a strong integrity, an unknown version, another name", async () => {
    const update: AgentUpdate = {
      version: "2.0.0",
      source: { kind: "npm", registry: url, package: "agent" },
      deadlineSeconds: 30,
    };
    files.set("/agent/2.0.0", {
      body: JSON.stringify({ name: "agent", version: "2.0.0", dist: { tarball: `${url}/t.tgz`, shasum: "abc" } }),
    });
    await expect(resolveSource(update)).rejects.toThrow(/no sha512\/sha256 dist.integrity/);
    files.set("/agent/2.0.0", {
      body: JSON.stringify({
        name: "other",
        version: "2.0.0",
        dist: { tarball: `${url}/t.tgz`, integrity: "sha512-AA==" },
      }),
    });
    await expect(resolveSource(update)).rejects.toThrow(/answered other@2.0.0/);
    files.delete("/agent/2.0.0");
    await expect(resolveSource(update)).rejects.toThrow(/has no agent@2.0.0/);
  });

  it("unpacks into its own versioned directory and checks the CLI names the version", async () => {
    const tgz = await pack(dir, "1.2.0");
    files.set("/p-1.2.0.tgz", { body: tgz });
    const hex = createHash("sha256").update(tgz).digest("hex");
    const install = await installVersion({
      dataDir,
      update: fromUrl("1.2.0", sha256HexToIntegrity(hex)),
      logger: memoryLogger(),
    });
    expect(install.dir).toMatch(/\/agent\/versions\/1\.2\.0-[0-9a-f]{12}\/package$/);
    // The same bytes again reuse the directory instead of unpacking over it.
    const again = await installVersion({ dataDir, update: fromUrl("1.2.0", sri(tgz)), logger: memoryLogger() });
    expect((await readdir(join(dataDir, "agent/versions"))).filter((n) => !n.startsWith("."))).toHaveLength(2);
    expect(again.version).toBe("1.2.0");
  });

  it("refuses a tarball that does not match its checksum, and unpacks nothing", async () => {
    const tgz = await pack(dir, "1.3.0");
    files.set("/p-1.3.0.tgz", { body: tgz });
    const other = await pack(dir, "1.3.0", { says: "x" });
    const err = await installVersion({ dataDir, update: fromUrl("1.3.0", sri(other)), logger: memoryLogger() }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UpdateError);
    expect((err as Error).message).toMatch(/does not match its checksum/);
    expect(existsSync(join(dataDir, "agent/versions"))).toBe(false);
  });

  it("refuses a package of another version, or whose CLI does not start or names another version", async () => {
    const wrong = await pack(dir, "1.4.1");
    files.set("/p-1.4.0.tgz", { body: wrong });
    await expect(
      installVersion({ dataDir, update: fromUrl("1.4.0", sri(wrong)), logger: memoryLogger() }),
    ).rejects.toThrow(/is version 1.4.1, not the wanted 1.4.0/);
    const lying = await pack(dir, "1.5.0", { says: "9.9.9" });
    files.set("/p-1.5.0.tgz", { body: lying });
    await expect(
      installVersion({ dataDir, update: fromUrl("1.5.0", sri(lying)), logger: memoryLogger() }),
    ).rejects.toThrow(/CLI says it is 9.9.9/);
    const versions = await readdir(join(dataDir, "agent/versions"));
    expect(versions).toEqual([]);
    files.set("/p-1.6.0.tgz", { status: 500, body: "no" });
    await expect(
      installVersion({ dataDir, update: fromUrl("1.6.0", sri(lying)), logger: memoryLogger() }),
    ).rejects.toThrow(/HTTP 500/);
  });
});

describe("the launcher", () => {
  let dir: string;
  let dataDir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "agent-launch-"));
    dataDir = join(dir, "data");
  });

  /** An "agent" at `version` whose `run` executes `body` (it gets the data dir as argv[4]). */
  async function fakeInstall(version: string, body: string): Promise<Install> {
    const pkg = join(dir, `v-${version}`, "package");
    await mkdir(join(pkg, "dist"), { recursive: true });
    await writeFile(join(pkg, "package.json"), JSON.stringify({ version, type: "module" }));
    await writeFile(join(pkg, "dist/cli.js"), body);
    return { version, dir: pkg, cli: join(pkg, "dist/cli.js") };
  }

  const markHealthy = (version: string) =>
    `import { mkdirSync, writeFileSync } from "node:fs";
     const dataDir = process.argv[4];
     mkdirSync(dataDir + "/agent", { recursive: true });
     writeFileSync(dataDir + "/agent/healthy.json", JSON.stringify({ version: ${JSON.stringify(version)}, pid: process.pid, at: new Date().toISOString() }));
     setTimeout(() => process.exit(75), 300);`;

  const supervise = async (previous: Install | null, current: Install, stop = new Promise<string>(() => {})) => {
    const state = {
      ...EMPTY_STATE,
      current,
      previous,
      pending: { since: new Date().toISOString(), deadlineSeconds: 2, starts: 0 },
    };
    await writeUpdateState(dataDir, state);
    return superviseVersion({
      dataDir,
      state,
      args: ["run", "--data-dir", dataDir],
      logger: memoryLogger(),
      stopSignal: stop,
      baseVersion: "1.0.0",
      pollMs: 50,
      killGraceMs: 2000,
    });
  };

  it("keeps a version that reconnects, and restarts when it asks to", async () => {
    const good = await fakeInstall("1.1.0", markHealthy("1.1.0"));
    expect(await supervise(null, good)).toEqual({ kind: "restart" });
    const { state } = await readUpdateState(dataDir);
    expect(state.current?.version).toBe("1.1.0");
    expect(state.pending).toBeNull();
    expect(state.failure).toBeNull();
  });

  it("rolls back to the previous version when the new one exits before reconnecting", async () => {
    const previous = await fakeInstall("1.1.0", "");
    const broken = await fakeInstall("1.2.0", "process.exit(1);");
    const outcome = await supervise(previous, broken);
    expect(outcome).toEqual({
      kind: "rolled-back",
      reason: "version 1.2.0 exited with code 1 before reconnecting to the control plane",
    });
    const { state } = await readUpdateState(dataDir);
    expect(state.current).toEqual(previous);
    expect(state.pending).toBeNull();
    expect(state.failure).toMatchObject({ version: "1.2.0", reason: outcome.kind === "rolled-back" && outcome.reason });
    // The failed version's directory is gone; the one rolled back to stays.
    expect(existsSync(join(dir, "v-1.2.0"))).toBe(false);
    expect(existsSync(previous.cli)).toBe(true);
  });

  it("rolls back to the base install when the new one never reconnects within its deadline", async () => {
    const hangs = await fakeInstall("1.3.0", "setInterval(() => {}, 1000);");
    const outcome = await supervise(null, hangs);
    expect(outcome).toEqual({
      kind: "rolled-back",
      reason: "version 1.3.0 did not reconnect to the control plane within 2 s",
    });
    expect((await readUpdateState(dataDir)).state.current).toBeNull();
  });

  it("forwards a stop to the running version and waits for it", async () => {
    const stays = await fakeInstall(
      "1.4.0",
      `${markHealthy("1.4.0").replace("setTimeout(() => process.exit(75), 300);", "")}
       process.on("SIGTERM", () => setTimeout(() => process.exit(0), 100)); setInterval(() => {}, 1000);`,
    );
    let stop: (s: string) => void = () => {};
    const stopping = new Promise<string>((r) => {
      stop = r;
    });
    const outcome = supervise(null, stays, stopping);
    // Stop once the trial is over (the version was kept).
    const kept = async () => {
      const { state } = await readUpdateState(dataDir);
      return state.current !== null && state.pending === null;
    };
    for (let i = 0; i < 100 && !(await kept()); i++) await new Promise((r) => setTimeout(r, 50));
    stop("SIGTERM");
    expect(await outcome).toEqual({ kind: "stopped", code: 0 });
    expect((await readUpdateState(dataDir)).state).toMatchObject({ current: stays, pending: null });
  });
});
