import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  cleanupTmpDirs,
  type EntryProcess,
  ensureBuilt,
  freshDataDir,
  killAll,
  startEntry,
} from "../support/process.js";
import { call, login, PASSWORD, uniqueEmail } from "./http-client.js";

/**
 * `npm start` (the built Node entry) with its local host (ADR 0019): with a Docker engine it
 * enrolls and runs a host agent for this machine with no manual step; without one it runs the
 * control plane alone and says once what is missing.
 */

beforeAll(() => ensureBuilt(), 180_000);
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  cleanupTmpDirs();
});

const dockerUp = spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0;
const inCi = process.env.CI === "true";

async function waitForLine(p: EntryProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const line = p.output.find((l) => pattern.test(l));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${p.output.join("\n")}`);
}

interface HostRow {
  id: string;
  region: string;
  status: string;
}

async function hosts(url: string, token: string): Promise<HostRow[]> {
  const res = await call(url, "/platform/fleet/hosts", { token });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as HostRow[];
}

describe.skipIf(!dockerUp && !inCi)("npm start with a Docker engine", () => {
  it("enrolls this machine as a host in region local, and keeps it across a restart", {
    timeout: 600_000,
  }, async () => {
    const dataDir = freshDataDir();
    const admin = uniqueEmail("local-host");
    const env = {
      SUPAMANAGER_DATA_DIR: dataDir,
      SUPAMANAGER_LOCAL_HOST: "auto",
      SUPAMANAGER_RELEASE: "local",
      SUPAMANAGER_ADMIN_EMAIL: admin,
      SUPAMANAGER_ADMIN_PASSWORD: PASSWORD,
      SUPAMANAGER_HEARTBEAT_SECONDS: "2",
    };
    const first = await startEntry(env);
    // Images are built (or found) first: the release's own tags must exist before the host is online.
    await waitForLine(first, /Local Docker host is online \(region `local`/, 540_000);
    for (const image of [
      "supamanager/postgres:local",
      "supamanager/postgres-meta:local",
      "supamanager/gateway:local",
    ]) {
      expect(spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status, image).toBe(0);
    }
    const token = await login(first.url, admin);
    const before = await hosts(first.url, token);
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ region: "local", status: "online" });

    const credFile = join(dataDir, "local-host", "credentials.json");
    expect(statSync(credFile).mode & 0o777).toBe(0o600);
    // The join token never appears in the output.
    expect(first.output.some((l) => /smj_/.test(l))).toBe(false);
    expect(await first.stop("SIGTERM")).toEqual({ code: 0, signal: null });

    // A restart reuses the credential: the same host comes back online, no second enrollment.
    const second = await startEntry(env);
    await waitForLine(second, /Local Docker host is online/, 120_000);
    const after = await hosts(second.url, await login(second.url, admin));
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: before[0]?.id, region: "local", status: "online" });
    expect(JSON.parse(readFileSync(credFile, "utf8")).url).toBe(second.url);
    expect(second.output.some((l) => l.includes('"msg":"enrolled the local host"'))).toBe(false);
    expect(await second.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});

describe("npm start without a Docker engine", () => {
  it("runs the control plane alone and says once what is missing and how to add a host", {
    timeout: 120_000,
  }, async () => {
    const dataDir = freshDataDir();
    const cp = await startEntry({
      SUPAMANAGER_DATA_DIR: dataDir,
      SUPAMANAGER_LOCAL_HOST: "auto",
      // A socket nobody listens on: the engine is unreachable.
      DOCKER_HOST: `unix://${join(dataDir, "no-docker.sock")}`,
    });
    await waitForLine(cp, /No Docker engine is reachable/, 60_000);
    expect((await call(cp.url, "/health")).status).toBe(200);
    const text = cp.stderr.join("\n");
    expect(text.match(/No Docker engine is reachable/g)).toHaveLength(1);
    expect(text).toContain("no-docker.sock");
    expect(text).toContain("hosts join-token --region");
    expect(text).toContain("SUPAMANAGER_LOCAL_HOST=off");
    expect(existsSync(join(dataDir, "local-host"))).toBe(false);
    // The next steps are printed either way.
    expect(text).toContain(`npx supamanager login --url ${cp.url}`);
    expect(await cp.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("says nothing about Docker when the local host is switched off", { timeout: 60_000 }, async () => {
    const cp = await startEntry({
      SUPAMANAGER_DATA_DIR: freshDataDir(),
      SUPAMANAGER_LOCAL_HOST: "off",
      DOCKER_HOST: "unix:///nonexistent/docker.sock",
    });
    expect((await call(cp.url, "/health")).status).toBe(200);
    expect(cp.output.some((l) => l.includes('"msg":"local host disabled"'))).toBe(true);
    expect(cp.stderr.join("\n")).not.toContain("No Docker engine");
    expect(await cp.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});
