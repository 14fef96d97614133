import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { Env } from "../config.js";
import type { AppDeps, ServiceContext } from "../deps.js";
import type { Logger } from "../logger.js";
import { createLocalHostJoinToken, hostExists } from "../services/fleet/hosts.js";

/**
 * The host agent `npm start` runs for this machine (ADR 0019). It is the real agent
 * (`supamanager-agent`), a child process with its own data directory under the control plane's
 * (`<data dir>/local-host/`, credential included), enrolled once through an ordinary single-use
 * join token in region `local`. Everything here talks to the agent the way any host's operator
 * would: the CLI, a join token, a credentials file.
 */

export const LOCAL_REGION = "local";
const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export type DockerProbe = { ok: true; version: string } | { ok: false; reason: string };

/** Whether a Docker engine answers (the `docker` CLI, so DOCKER_HOST / contexts apply as for the agent). */
export function probeDocker(env: NodeJS.ProcessEnv = process.env, timeoutMs = 10_000): Promise<DockerProbe> {
  return new Promise((done) => {
    execFile(
      "docker",
      ["version", "--format", "{{.Server.Version}}"],
      { env, timeout: timeoutMs, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (!err) return done({ ok: true, version: stdout.trim() });
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.code === "ENOENT") return done({ ok: false, reason: "the `docker` command is not installed" });
        if (e.killed)
          return done({ ok: false, reason: `\`docker version\` did not answer within ${timeoutMs / 1000} s` });
        const line =
          stderr
            .split("\n")
            .map((l) => l.trim())
            .find((l) => l.length > 0) ?? e.message;
        done({ ok: false, reason: line.slice(0, 300) });
      },
    );
  });
}

/** What `npm start` prints, once, when there is no Docker engine to run projects on. */
export function noDockerMessage(reason: string, url: string): string {
  return [
    "No Docker engine is reachable, so this machine will not run projects:",
    `  ${reason}`,
    "The control plane runs anyway. To run projects:",
    "  - on this machine: start Docker (or point DOCKER_HOST at it) and restart `npm start`;",
    "    the local host is enrolled automatically (region `local`);",
    "  - on another machine with Docker: create a join token and paste the line it prints there:",
    `      npx supamanager hosts join-token --region <region> --url ${url}`,
    "Set SUPAMANAGER_LOCAL_HOST=off to run the control plane alone without this note.",
  ].join("\n");
}

/** The images of the `local` release that are not on this machine. */
export async function missingImages(images: string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const missing: string[] = [];
  for (const image of images) {
    const found = await new Promise<boolean>((done) =>
      execFile("docker", ["image", "inspect", "--format", "{{.Id}}", image], { env, timeout: 30_000 }, (err) =>
        done(!err),
      ),
    );
    if (!found) missing.push(image);
  }
  return missing;
}

const StoredCredentials = z.looseObject({ url: z.string(), host_id: z.string(), hostname: z.string() });

export interface LocalHostOptions {
  env: Env;
  deps: AppDeps;
  logger: Logger;
  /** Where the agent dials the control plane (a loopback URL of the listening server). */
  url: string;
  /** A line (or lines) for the person at the terminal. */
  say: (text: string) => void;
  /** The agent's own output lines (its JSON log). Default: this process's stdout. */
  agentOutput?: (line: string) => void;
  /** How long to wait for the agent's first connection before saying it is late. */
  onlineTimeoutMs?: number;
}

export interface LocalHost {
  hostId: string;
  /** Resolves when the agent is connected (or rejects when it did not connect in time). */
  online: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Start the local host, when wanted and possible. Returns null when it is switched off or Docker
 * is unreachable (then the terminal has been told, once, what is missing and how to add a host).
 */
export async function startLocalHost(opts: LocalHostOptions): Promise<LocalHost | null> {
  const { env, deps, logger, say } = opts;
  const mode = env.SUPAMANAGER_LOCAL_HOST ?? (env.NODE_ENV === "production" ? "off" : "auto");
  if (mode === "off") {
    logger.info("local host disabled", { setting: "SUPAMANAGER_LOCAL_HOST=off" });
    return null;
  }
  const docker = await probeDocker();
  if (!docker.ok) {
    logger.warn("no Docker engine: not starting a local host", { reason: docker.reason });
    say(noDockerMessage(docker.reason, opts.url));
    return null;
  }
  logger.info("Docker engine found: starting the local host", { docker: docker.version });

  if (deps.releases.defaultRelease === "local") await ensureLocalImages(opts);

  const dataDir = resolve(env.SUPAMANAGER_DATA_DIR, "local-host");
  const ctx: ServiceContext = {
    db: deps.database.db,
    deps,
    meta: { requestId: "local-host", ip: undefined, userAgent: undefined },
  };
  const agentCli = fileURLToPath(import.meta.resolve("@supamanager/host-agent/cli"));
  const hostId = await enroll({ ...opts, ctx, dataDir, agentCli });
  const agent = superviseAgent({ ...opts, dataDir, agentCli });

  const online = waitOnline(deps, hostId, opts.onlineTimeoutMs ?? 120_000).then(
    () => {
      logger.info("local host online", { host_id: hostId, region: LOCAL_REGION });
      say(`Local Docker host is online (region \`${LOCAL_REGION}\`, ${hostId}): projects can be created.`);
    },
    (err: unknown) => {
      say(
        `The local host agent has not connected yet (${err instanceof Error ? err.message : String(err)}); its log lines above say why.`,
      );
      throw err;
    },
  );
  online.catch(() => undefined); // reported above; callers may await it too
  return { hostId, online, stop: agent.stop };
}

/**
 * Make the `local` release's images this checkout's: images/build.mjs is idempotent (a second or so
 * when every recipe tag exists, then it re-points `supamanager/<name>:local` at this checkout's
 * recipes, ADR 0018) and builds what is missing, its progress shown. When nothing was missing its
 * output stays quiet unless it fails.
 */
async function ensureLocalImages(opts: LocalHostOptions): Promise<void> {
  const release = opts.deps.releases.get("local");
  if (!release) return;
  const images = Object.values(release.services).map((s) => s.image);
  const missing = await missingImages(images);
  const script = join(REPO_ROOT, "images/build.mjs");
  if (!existsSync(script)) {
    if (missing.length > 0) {
      opts.say(
        `The \`local\` release's images are missing (${missing.join(", ")}) and images/build.mjs is not here to build them.`,
      );
    }
    return;
  }
  const building = missing.length > 0;
  if (building) {
    opts.say(
      `Building the \`local\` release's images (${missing.join(", ")}): a few minutes the first time, then cached…`,
    );
  }
  const started = Date.now();
  const output: string[] = [];
  const code = await new Promise<number | null>((done) => {
    const child = spawn(process.execPath, [script], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        if (building) opts.say(`  ${line}`);
        else output.push(line);
      });
    }
    child.on("error", () => done(null));
    child.on("close", (c) => done(c));
  });
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  if (code === 0) {
    if (building) opts.say(`Images of the \`local\` release are ready (${secs} s).`);
    return;
  }
  if (!building) {
    // The images exist (maybe from another checkout's recipes): say so, without the build's noise.
    opts.logger.warn("images/build.mjs failed; using the local release's images already on this machine", {
      exit: code,
      tail: output.slice(-3).join(" | "),
    });
    return;
  }
  opts.say(
    `Building the \`local\` release's images failed (exit ${code}); projects on the \`local\` release will fail until ` +
      "`npm run images:test` succeeds on this machine (it needs root and debootstrap, see docs/test-images.md).",
  );
}

interface EnrollOptions extends LocalHostOptions {
  ctx: ServiceContext;
  dataDir: string;
  agentCli: string;
}

/** The local host's id: the enrolled one (its credential in the data dir), or a new enrollment. */
async function enroll(opts: EnrollOptions): Promise<string> {
  const file = join(opts.dataDir, "credentials.json");
  if (existsSync(file)) {
    const stored = StoredCredentials.safeParse(JSON.parse(readFileSync(file, "utf8")));
    if (stored.success && (await hostExists(opts.ctx, stored.data.host_id))) {
      // The control plane may listen on another port than last time: the agent dials this one.
      if (stored.data.url !== opts.url) {
        writeFileSync(file, `${JSON.stringify({ ...stored.data, url: opts.url }, null, 2)}\n`, { mode: 0o600 });
      }
      return stored.data.host_id;
    }
    opts.logger.warn("the local host's credential is unknown to this control plane: enrolling again", { file });
  }
  const { token } = await createLocalHostJoinToken(opts.ctx, {
    region: LOCAL_REGION,
    uses: 1,
    expiresInSeconds: 600,
  });
  // The token goes through the environment, not argv (the process list is readable by others).
  const result = await new Promise<{ code: number | null; output: string }>((done) => {
    const child = spawn(
      process.execPath,
      [opts.agentCli, "join", "--url", opts.url, "--data-dir", opts.dataDir, "--name", hostname(), "--force"],
      { env: { ...process.env, SUPAMANAGER_JOIN_TOKEN: token }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.on("error", (err) => done({ code: null, output: err.message }));
    child.on("close", (code) => done({ code, output }));
  });
  if (result.code !== 0) {
    throw new Error(`enrolling the local host failed (exit ${result.code}): ${result.output.trim().slice(0, 500)}`);
  }
  const stored = StoredCredentials.parse(JSON.parse(readFileSync(file, "utf8")));
  opts.logger.info("enrolled the local host", { host_id: stored.host_id, region: LOCAL_REGION });
  return stored.host_id;
}

/** Run `supamanager-agent run` and restart it (with backoff) if it dies while we are running. */
function superviseAgent(opts: LocalHostOptions & { dataDir: string; agentCli: string }): { stop(): Promise<void> } {
  const out = opts.agentOutput ?? ((line: string) => process.stdout.write(`${line}\n`));
  let child: ChildProcess | null = null;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  const start = () => {
    const startedAt = Date.now();
    const c = spawn(process.execPath, [opts.agentCli, "run", "--data-dir", opts.dataDir], {
      env: process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = c;
    for (const stream of [c.stdout, c.stderr]) createInterface({ input: stream }).on("line", out);
    c.on("close", (code, signal) => {
      child = null;
      if (stopping) return;
      failures = Date.now() - startedAt > 60_000 ? 1 : failures + 1;
      const delay = Math.min(30_000, 1000 * 2 ** (failures - 1));
      opts.logger.error("local host agent exited; restarting", { code, signal, in_ms: delay });
      restartTimer = setTimeout(start, delay);
    });
  };
  start();
  return {
    stop: () => {
      stopping = true;
      clearTimeout(restartTimer);
      const c = child;
      if (!c) return Promise.resolve();
      return new Promise<void>((done) => {
        const kill = setTimeout(() => c.kill("SIGKILL"), 15_000);
        c.once("close", () => {
          clearTimeout(kill);
          done();
        });
        c.kill("SIGTERM");
      });
    },
  };
}

async function waitOnline(deps: AppDeps, hostId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await deps.hub.isConnected(hostId)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not connected after ${Math.round(timeoutMs / 1000)} s`);
}
