import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/process.js";

/**
 * README.md's journey, word for word: the test clones the repository (its committed HEAD), reads
 * README.md OF THE CLONE, extracts the fenced blocks marked `<!-- readme-test: start|cli|curl -->`
 * and runs them with bash in the clone, on the real Docker engine, with SUPAMANAGER_RELEASE=local
 * as the README tells machines without registry access. Its only changes to the text: the port
 * (8080 → a free one), since other servers may hold 8080 here. Everything else is the
 * environment: PORT, a private project port range and CLI config file, and a second data
 * directory for the curl journey (the first account of a control plane is the instance admin,
 * so each journey gets its own fresh control plane).
 */

const dockerUp = spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0;
const inCi = process.env.CI === "true";

function readmeBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const re = /<!-- readme-test: ([a-z-]+) -->\s*\n```sh\n([\s\S]*?)\n```/g;
  for (const m of markdown.matchAll(re)) {
    const [, name, body] = m;
    if (name && body !== undefined) blocks.set(name, body);
  }
  return blocks;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

interface Run {
  child: ChildProcess;
  lines: { at: number; text: string }[];
  exited: Promise<number | null>;
}

function runBash(script: string, cwd: string, env: NodeJS.ProcessEnv): Run {
  // Its own process group, so stopping `npm start` also stops npm's child and the agent.
  const child = spawn("bash", ["-euo", "pipefail", "-c", script], {
    cwd,
    env,
    detached: true,
    // No socket on stdin: bash would take itself for a remote shell and read /etc/bash.bashrc.
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Run["lines"] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream?.on("data", (chunk: Buffer) => {
      buf += chunk.toString();
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push({ at: Date.now(), text });
        nl = buf.indexOf("\n");
      }
    });
    // The last line may have no newline (curl prints bodies as they are).
    stream?.on("end", () => {
      if (buf) lines.push({ at: Date.now(), text: buf });
    });
  }
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, lines, exited };
}

async function stopGroup(run: Run): Promise<void> {
  if (run.child.exitCode !== null || run.child.pid === undefined) return;
  try {
    process.kill(-run.child.pid, "SIGINT");
  } catch {
    return; // already gone
  }
  const timer = setTimeout(() => {
    try {
      if (run.child.pid) process.kill(-run.child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }, 20_000);
  await run.exited;
  clearTimeout(timer);
}

async function waitForLine(run: Run, pattern: RegExp, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const hit = run.lines.find((l) => pattern.test(l.text));
    if (hit) return hit.at;
    if (run.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no line matching ${pattern}:\n${run.lines.map((l) => l.text).join("\n")}`);
}

/** Projects the journey left behind (a failed run), found by their compose working dir: containers, volumes, network. */
function removeLeftovers(cloneDir: string): void {
  const docker = (...args: string[]) => execFileSync("docker", args, { encoding: "utf8" }).split("\n").filter(Boolean);
  const refs = new Set<string>();
  for (const id of docker("ps", "-aq", "--filter", "label=org.supamanager.ref")) {
    const [dir, ref] = docker(
      "inspect",
      "--format",
      '{{index .Config.Labels "com.docker.compose.project.working_dir"}}\n{{index .Config.Labels "org.supamanager.ref"}}',
      id,
    );
    if (dir?.startsWith(cloneDir) && ref) {
      refs.add(ref);
      spawnSync("docker", ["rm", "-f", "-v", id], { stdio: "ignore" });
    }
  }
  for (const ref of refs) {
    const label = `label=com.docker.compose.project=${ref}`;
    for (const v of docker("volume", "ls", "-q", "--filter", label))
      spawnSync("docker", ["volume", "rm", v], { stdio: "ignore" });
    for (const n of docker("network", "ls", "-q", "--filter", label))
      spawnSync("docker", ["network", "rm", n], { stdio: "ignore" });
  }
}

describe("README.md's blocks", () => {
  it("are all there, marked for this test", () => {
    const blocks = readmeBlocks(readFileSync(join(REPO_ROOT, "README.md"), "utf8"));
    expect([...blocks.keys()].sort()).toEqual(["cli", "curl", "start"]);
    expect(blocks.get("start")).toContain("npm start");
  });
});

describe.skipIf(!dockerUp && !inCi)("README.md's journey on a fresh clone", () => {
  const work = mkdtempSync(join(tmpdir(), "supamanager-readme-"));
  const clone = join(work, "supamanager");
  const running: Run[] = [];
  afterAll(async () => {
    for (const r of running) await stopGroup(r);
    removeLeftovers(clone);
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it("goes from git clone to ACTIVE_HEALTHY and back to nothing, with the CLI and with curl", {
    timeout: 1_800_000,
  }, async () => {
    const t0 = Date.now();
    execFileSync("git", ["clone", "--quiet", "--no-hardlinks", REPO_ROOT, clone], { stdio: "pipe" });
    const blocks = readmeBlocks(readFileSync(join(clone, "README.md"), "utf8"));
    const port = await freePort();
    const withPort = (s: string) => s.replaceAll("127.0.0.1:8080", `127.0.0.1:${port}`);
    const base: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      SUPAMANAGER_PORT_RANGE: "27500-27599",
      SUPAMANAGER_CONFIG: join(work, "cli-config.json"),
    };

    const journey = async (name: "cli" | "curl", dataDir: string) => {
      const server = runBash(blocks.get("start") ?? "", clone, { ...base, SUPAMANAGER_DATA_DIR: dataDir });
      running.push(server);
      const online = await waitForLine(server, /Local Docker host is online/, 1_200_000);
      const steps = runBash(withPort(blocks.get(name) ?? ""), clone, base);
      running.push(steps);
      const code = await steps.exited;
      const out = steps.lines.map((l) => l.text).join("\n");
      expect(code, out).toBe(0);
      await stopGroup(server);
      return { online, healthy: steps.lines.find((l) => /ACTIVE_HEALTHY/.test(l.text))?.at, out };
    };
    const secs = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

    const cli = await journey("cli", join(clone, ".data"));
    expect(cli.healthy, cli.out).toBeDefined();
    console.log(
      `README journey (CLI): git clone → local host online ${secs(cli.online - t0)}, → ACTIVE_HEALTHY ` +
        `${secs((cli.healthy ?? t0) - t0)}, → project deleted ${secs(Date.now() - t0)}`,
    );
    expect(cli.out).toContain("INACTIVE");
    // The row was inserted, and read back after pause and restore.
    expect(cli.out.match(/hello/g)?.length ?? 0, cli.out).toBeGreaterThanOrEqual(2);
    expect(cli.out).toMatch(/Project [a-z]{20} \(shop\) removed\./);

    const t1 = Date.now();
    const curl = await journey("curl", join(clone, ".data-curl"));
    console.log(`README journey (curl): npm start → project deleted ${secs(Date.now() - t1)}`);
    expect(curl.out).toContain('{"status":"ok"}');
    expect(curl.out).toMatch(/^anon: ey/m);
    expect(curl.out.match(/hello/g)?.length ?? 0, curl.out).toBeGreaterThanOrEqual(2);
  });
});
