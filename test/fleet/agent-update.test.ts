import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureAgentBuilt } from "../support/agent-process.js";
import { projectContainers, startedAt } from "../support/docker.js";
import { REPO_ROOT } from "../support/process.js";
import { Fleet, type HostJson, prerequisites } from "./fleet-harness.js";

/**
 * Agent self-update (ADR 0040) with a real control plane, a real agent process and real packages:
 * the agent runs from the workspace's build (the base install, version 0.1.0), the control plane
 * is told to want 0.1.1 from an npm registry (a local HTTP server answering as the registry does,
 * serving `npm run agent:pack`'s tarball), then 0.1.2 from an operator URL with its sha256 — a
 * build that exits at start. The first update sticks; the second is rolled back and the host
 * list says why. A project keeps running throughout.
 */

const CI = process.env.CI === "true";
const pre = await prerequisites();
if (!pre.ok && !CI) {
  console.warn(`\n!!! SKIPPING the agent self-update test: ${pre.why}. Run \`npm run images:test\`.\n`);
}

const BASE = "0.1.0";
const GOOD = "0.1.1";
const BROKEN = "0.1.2";
const PACKAGE = "supamanager-agent";

const fleet = new Fleet();
let server: Server;
let registry = "";
const served = new Map<string, Buffer | string>();
let projectRef = "";
let containersBefore: Record<string, string> = {};

function packAgent(version: string, out: string): { file: string; sha256: string; integrity: string } {
  const line = execFileSync(process.execPath, ["scripts/pack-agent.mjs", "--version", version, "--out", out], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
  return JSON.parse(line.trim().split("\n").pop() as string);
}

/** A build that installs fine (its `--version` answers) and dies as soon as it is run. */
function packBroken(version: string, out: string): Buffer {
  const root = join(out, "broken");
  mkdirSync(join(root, "package/dist"), { recursive: true });
  writeFileSync(
    join(root, "package/package.json"),
    JSON.stringify({ name: PACKAGE, version, type: "module", bin: { "supamanager-agent": "dist/cli.js" } }),
  );
  writeFileSync(
    join(root, "package/dist/cli.js"),
    [
      `if (process.argv[2] === "--version") { console.log(${JSON.stringify(version)}); process.exit(0); }`,
      `console.error("supamanager-agent ${version}: cannot start (a broken build)");`,
      "process.exit(1);",
    ].join("\n"),
  );
  const file = join(out, `broken-${version}.tgz`);
  execFileSync("tar", ["-czf", file, "-C", root, "package"]);
  return readFileSync(file);
}

const agentName = "upd-host";
const host = (pred: (h: HostJson) => boolean, timeoutMs = 120_000) => fleet.waitForHost(agentName, pred, timeoutMs);
const updateState = () =>
  JSON.parse(readFileSync(join(fleet.agent(agentName).dataDir, "agent/state.json"), "utf8")) as {
    current: { version: string; dir: string } | null;
    previous: { version: string } | null;
    pending: unknown;
    failure: { version: string; reason: string } | null;
  };

describe.skipIf(!pre.ok && !CI)("agent self-update with a real control plane and agent", () => {
  beforeAll(async () => {
    if (!pre.ok) throw new Error(`CI=true and the agent self-update test cannot run: ${pre.why}`);
    ensureAgentBuilt();
    const out = fleet.tmpDir("packages");
    const good = packAgent(GOOD, out);
    const goodTgz = readFileSync(good.file);
    served.set(`/${PACKAGE}/${GOOD}/tarball.tgz`, goodTgz);
    const broken = packBroken(BROKEN, out);
    served.set(`/files/broken-${BROKEN}.tgz`, broken);
    server = createServer((req, res) => {
      const body = served.get(req.url ?? "");
      if (body === undefined) return void res.writeHead(404, { "content-type": "application/json" }).end("{}");
      res.writeHead(200, {
        "content-type": typeof body === "string" ? "application/json" : "application/octet-stream",
      });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // What the npm registry answers for GET /<package>/<version>: the version's dist.
    served.set(
      `/${PACKAGE}/${GOOD}`,
      JSON.stringify({
        name: PACKAGE,
        version: GOOD,
        dist: { tarball: `${registry}/${PACKAGE}/${GOOD}/tarball.tgz`, integrity: good.integrity },
      }),
    );
    served.set("broken-sha256", createHash("sha256").update(broken).digest("hex"));
    await fleet.start();
    await fleet.enroll(agentName, "eu-1", "127.0.0.1");
  }, 300_000);

  afterAll(async () => {
    const errors = await fleet.cleanup();
    if (errors.length > 0) console.warn(`fleet cleanup problems:\n${errors.join("\n")}`);
    if (server) await new Promise((r) => server.close(r));
  }, 180_000);

  it("lists the host current on the base version while no version is wanted", { timeout: 300_000 }, async () => {
    const h = await host((x) => x.status === "online" && x.agent_version === BASE, 30_000);
    expect(h).toMatchObject({
      agent_protocol: 1,
      agent_wanted_version: null,
      agent_status: "current",
      agent_behind: false,
    });
    // A project, to show that it keeps running while its agent changes versions.
    const p = await fleet.createProject("runs through updates", "eu-1", "update-test-password");
    projectRef = p.ref;
    await fleet.waitForStatus(projectRef, "ACTIVE_HEALTHY", 240_000);
    const names = (await projectContainers(projectRef)).map((c) => c.name);
    containersBefore = await startedAt(names);
    expect(Object.keys(containersBefore).length).toBeGreaterThan(0);
  });

  it("updates to the version the control plane wants from the npm registry, and reconnects on it", {
    timeout: 240_000,
  }, async () => {
    const launcher = fleet.agent(agentName).proc;
    await fleet.stopControlPlane();
    await fleet.startControlPlane({
      SUPAMANAGER_AGENT_VERSION: GOOD,
      SUPAMANAGER_AGENT_PACKAGE: PACKAGE,
      SUPAMANAGER_AGENT_REGISTRY: registry,
      SUPAMANAGER_AGENT_UPDATE_DEADLINE_SECONDS: "90",
    });
    const h = await host((x) => x.status === "online" && x.agent_version === GOOD);
    expect(h).toMatchObject({ agent_wanted_version: GOOD, agent_status: "current", agent_behind: false });
    // The base install stayed the supervisor's process: it launched the new version and kept it.
    expect(fleet.agent(agentName).proc).toBe(launcher);
    // The launcher sees the health marker on its next look (it polls), possibly after the hello.
    await launcher?.waitForLog((l) => l.msg === "agent update: the new version reconnected; keeping it", 30_000);
    const state = updateState();
    expect(state).toMatchObject({ current: { version: GOOD }, previous: null, pending: null, failure: null });
    expect(state.current?.dir).toMatch(/\/agent\/versions\/0\.1\.1-[0-9a-f]{12}\/package$/);
    expect(existsSync(join(state.current?.dir ?? "", "dist/cli.js"))).toBe(true);
  });

  it("rolls back a build that does not start, reconnects on the old version, and the host list says why", {
    timeout: 240_000,
  }, async () => {
    await fleet.stopControlPlane();
    await fleet.startControlPlane({
      SUPAMANAGER_AGENT_VERSION: BROKEN,
      SUPAMANAGER_AGENT_URL: `${registry}/files/broken-${BROKEN}.tgz`,
      SUPAMANAGER_AGENT_SHA256: served.get("broken-sha256") as string,
      SUPAMANAGER_AGENT_UPDATE_DEADLINE_SECONDS: "60",
    });
    const h = await host((x) => x.status === "online" && x.agent_status === "update_failed");
    expect(h).toMatchObject({ agent_version: GOOD, agent_wanted_version: BROKEN, agent_behind: true });
    expect(h.agent_status_reason).toBe(
      `the update from ${GOOD} to ${BROKEN} failed: version ${BROKEN} exited with code 1 before reconnecting to the control plane`,
    );
    const state = updateState();
    expect(state).toMatchObject({ current: { version: GOOD }, pending: null, failure: { version: BROKEN } });
    const launcher = fleet.agent(agentName).proc;
    expect(launcher?.output.some((l) => l.includes(`supamanager-agent ${BROKEN}: cannot start`))).toBe(true);
    // The failed version is not retried while the control plane keeps wanting it.
    const starts = () => launcher?.logs().filter((l) => l.msg === "starting the new agent version on trial").length;
    const before = starts();
    await fleet.stopControlPlane();
    await fleet.startControlPlane({
      SUPAMANAGER_AGENT_VERSION: BROKEN,
      SUPAMANAGER_AGENT_URL: `${registry}/files/broken-${BROKEN}.tgz`,
      SUPAMANAGER_AGENT_SHA256: served.get("broken-sha256") as string,
    });
    await launcher?.waitForLog((l) => l.msg === "agent update skipped", 60_000);
    await host((x) => x.status === "online" && x.agent_status === "update_failed");
    expect(starts()).toBe(before);
  });

  it("kept the project running through both agent restarts", { timeout: 60_000 }, async () => {
    const names = Object.keys(containersBefore);
    expect(await startedAt(names)).toEqual(containersBefore);
    const p = await fleet.project(projectRef);
    expect(p.body.status).toBe("ACTIVE_HEALTHY");
  });
});
