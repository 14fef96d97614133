import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { inject } from "vitest";
import { type AgentProcess, joinAgent, killAllAgents, runAgent } from "../support/agent-process.js";
import { dockerAvailable, removeProjectLeftovers } from "../support/docker.js";
import { freshDatabase } from "../support/pg.js";
import { type EntryProcess, killAll, REPO_ROOT, startEntry } from "../support/process.js";

/**
 * Shared machinery of the fleet end-to-end tests: ONE control plane (the built entry on a fresh
 * PostgreSQL database, on a fixed port so agents find it again after a restart) and host agents
 * (the built CLI, each with its own data directory), plus an HTTP client and bounded waits that
 * explain themselves when they time out.
 */

export const LOCAL_IMAGES_FILE = join(REPO_ROOT, "images/manifest.local.json");
export const ADMIN_EMAIL = "fleet-admin@example.test";
export const ADMIN_PASSWORD = "fleet admin password 0123456789";
export const OFFLINE_SECONDS = 6;

/** Can these tests run here? In CI they must: a missing prerequisite fails instead of skipping. */
export async function prerequisites(): Promise<{ ok: boolean; why: string }> {
  if (!(await dockerAvailable())) return { ok: false, why: "no Docker engine answers `docker info`" };
  if (!existsSync(LOCAL_IMAGES_FILE))
    return { ok: false, why: `${LOCAL_IMAGES_FILE} is missing (npm run images:test)` };
  return { ok: true, why: "" };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ApiResult<T = unknown> {
  status: number;
  body: T;
  text: string;
}

/**
 * One HTTP call to the control plane at `to.url`, as `to.token` (a bearer token; none when empty),
 * with `json` as the body when given. The body is parsed as JSON when it is JSON, else kept as text.
 */
export async function request<T = unknown>(
  to: { url: string; token?: string; timeoutMs?: number },
  method: string,
  path: string,
  json?: unknown,
): Promise<ApiResult<T>> {
  const headers = new Headers();
  if (to.token) headers.set("authorization", `Bearer ${to.token}`);
  if (json !== undefined) headers.set("content-type", "application/json");
  const res = await fetch(new URL(path, to.url), {
    method,
    headers,
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    signal: AbortSignal.timeout(to.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: body as T, text };
}

interface AgentSlot {
  name: string;
  region: string;
  bindAddress: string;
  dataDir: string;
  hostId: string;
  proc: AgentProcess | null;
}

export class Fleet {
  cp: EntryProcess | null = null;
  url = "";
  token = "";
  orgSlug = "";
  readonly agents = new Map<string, AgentSlot>();
  readonly refs = new Set<string>();
  readonly #tmp: string[] = [];
  #dropDb: (() => Promise<void>) | null = null;
  #env: Record<string, string> = {};
  /** Every control-plane process's output, kept across restarts (for failure messages). */
  readonly cpOutput: string[] = [];

  tmpDir(prefix: string): string {
    const d = mkdtempSync(join(tmpdir(), `supamanager-fleet-${prefix}-`));
    this.#tmp.push(d);
    return d;
  }

  /** Start the control plane (`extraEnv` added to its environment for this fleet) and sign in. */
  async start(extraEnv: Record<string, string> = {}): Promise<void> {
    const db = await freshDatabase(inject("templateDatabase"));
    this.#dropDb = db.drop;
    const port = await freePort();
    this.#env = {
      NODE_ENV: "production",
      SUPAMANAGER_JWT_SECRET: "fleet-e2e-jwt-secret-0123456789abcdef0123456",
      SUPAMANAGER_ENCRYPTION_KEY: "1e".repeat(32),
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: "5",
      PORT: String(port),
      SUPAMANAGER_DATA_DIR: this.tmpDir("cp"),
      SUPAMANAGER_ADMIN_EMAIL: ADMIN_EMAIL,
      SUPAMANAGER_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SUPAMANAGER_LOCAL_IMAGES_FILE: LOCAL_IMAGES_FILE,
      // The default release pulls upstream images; these hosts run the locally built one.
      SUPAMANAGER_RELEASE: "local",
      SUPAMANAGER_HOST_OFFLINE_SECONDS: String(OFFLINE_SECONDS),
      SUPAMANAGER_HEARTBEAT_SECONDS: "1",
      // Away from the default range other sessions' control planes use on this shared engine, and
      // below Linux's ephemeral range (32768+), whose ports other sockets may hold at any moment.
      SUPAMANAGER_PORT_RANGE: "26000-26999",
      ...extraEnv,
    };
    await this.startControlPlane();
    const login = await this.api<{ access_token: string }>("POST", "/auth/v1/token?grant_type=password", {
      email: ADMIN_EMAIL,
      password: ADMIN_PASSWORD,
    });
    if (login.status !== 200) throw new Error(`admin login failed: ${login.status} ${login.text}`);
    this.token = login.body.access_token;
    const org = await this.api<{ slug: string }>("POST", "/platform/organizations", {
      name: "Fleet e2e",
      tier: "tier_free",
    });
    if (org.status !== 201) throw new Error(`create organization failed: ${org.status} ${org.text}`);
    this.orgSlug = org.body.slug;
  }

  /** (Re)start the control plane on the same port and database; `extraEnv` for this process only. */
  async startControlPlane(extraEnv: Record<string, string> = {}): Promise<void> {
    const cp = await startEntry({ ...this.#env, ...extraEnv }, { timeoutMs: 60_000 });
    this.cp = cp;
    this.url = cp.url;
    this.cpOutput.push(`--- control plane pid ${cp.pid} ---`);
    // Mirror the live output into cpOutput (startEntry's arrays keep growing).
    let seen = 0;
    const timer = setInterval(() => {
      while (seen < cp.output.length) this.cpOutput.push(cp.output[seen++] as string);
    }, 200);
    timer.unref();
    void cp.exited.then(() => {
      clearInterval(timer);
      while (seen < cp.output.length) this.cpOutput.push(cp.output[seen++] as string);
    });
  }

  async stopControlPlane(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const cp = this.cp;
    this.cp = null;
    if (cp) await cp.stop(signal, 15_000);
  }

  api<T = unknown>(method: string, path: string, json?: unknown): Promise<ApiResult<T>> {
    return request<T>({ url: this.url, token: this.token, timeoutMs: 15_000 }, method, path, json);
  }

  /** Enroll an agent through a join token (the built CLI's `join`) and start `run`. */
  async enroll(name: string, region: string, bindAddress: string): Promise<AgentSlot> {
    const tok = await this.api<{ token: string }>("POST", "/platform/fleet/join-tokens", { region });
    if (tok.status !== 201) throw new Error(`join token failed: ${tok.status} ${tok.text}`);
    const dataDir = join(this.tmpDir(`agent-${name}`), "data");
    const joined = await joinAgent({ url: this.url, token: tok.body.token, dataDir, name, bindAddress });
    if (joined.code !== 0) throw new Error(`agent join exited ${joined.code}: ${joined.output}`);
    const m = /"host_id":"(host_[a-z0-9]+)"/.exec(joined.output);
    if (!m?.[1]) throw new Error(`agent join printed no host_id: ${joined.output}`);
    const slot: AgentSlot = { name, region, bindAddress, dataDir, hostId: m[1], proc: null };
    this.agents.set(name, slot);
    this.startAgent(name);
    return slot;
  }

  agent(name: string): AgentSlot {
    const a = this.agents.get(name);
    if (!a) throw new Error(`no agent ${name}`);
    return a;
  }

  startAgent(name: string): AgentProcess {
    const a = this.agent(name);
    a.proc = runAgent(a.dataDir);
    return a.proc;
  }

  async stopAgent(name: string, signal: NodeJS.Signals = "SIGTERM") {
    const a = this.agent(name);
    const p = a.proc;
    if (!p) return null;
    const e = signal === "SIGKILL" ? await p.kill9() : await p.stop(signal);
    return e;
  }

  projectDir(agentName: string, ref: string): string {
    return join(this.agent(agentName).dataDir, "projects", ref);
  }

  async hosts(): Promise<HostJson[]> {
    const r = await this.api<HostJson[]>("GET", "/platform/fleet/hosts");
    if (r.status !== 200) throw new Error(`GET /platform/fleet/hosts: ${r.status} ${r.text}`);
    return r.body;
  }

  /** Poll the host list until `pred` holds for host `name`; bounded. */
  async waitForHost(name: string, pred: (h: HostJson) => boolean, timeoutMs: number): Promise<HostJson> {
    const id = this.agent(name).hostId;
    const deadline = Date.now() + timeoutMs;
    let last: HostJson | undefined;
    while (Date.now() < deadline) {
      last = (await this.hosts().catch(() => [])).find((h) => h.id === id);
      if (last && pred(last)) return last;
      await sleep(300);
    }
    throw new Error(
      `host ${name} did not reach the wanted state within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
    );
  }

  async createProject(name: string, region: string, dbPass: string, size = "nano"): Promise<ProjectJson> {
    const r = await this.api<ProjectJson>("POST", "/platform/projects", {
      name,
      organization_slug: this.orgSlug,
      db_pass: dbPass,
      db_region: region,
      desired_instance_size: size,
    });
    if (r.status !== 201) throw new Error(`create project failed: ${r.status} ${r.text}`);
    this.refs.add(r.body.ref);
    return r.body;
  }

  async project(ref: string): Promise<ApiResult<ProjectJson>> {
    return this.api<ProjectJson>("GET", `/platform/projects/${ref}`);
  }

  /**
   * Poll GET /platform/projects/{ref}/status until it reads `target`; bounded. Fails at once on a
   * failed status that is not the target. The error carries the status history, the project's
   * detail and the tails of the agents' and control plane's output.
   */
  async waitForStatus(ref: string, target: string, timeoutMs = 120_000): Promise<StatusHistory> {
    const history: StatusHistory = [];
    const started = Date.now();
    const failed = new Set(["INIT_FAILED", "PAUSE_FAILED", "RESTORE_FAILED", "REMOVED"]);
    let lastError = "";
    while (Date.now() - started < timeoutMs) {
      const r = await this.api<{ status: string }>("GET", `/platform/projects/${ref}/status`).catch((err: Error) => ({
        status: 0,
        body: { status: `(request failed: ${err.message})` },
        text: "",
      }));
      const s = r.status === 200 ? r.body.status : `HTTP ${r.status}`;
      if (history.at(-1)?.status !== s) history.push({ status: s, atMs: Date.now() - started });
      if (s === target) return history;
      if (r.status === 404 && target === "REMOVED") return history;
      if (failed.has(s) && s !== target) {
        lastError = `reached ${s}`;
        break;
      }
      await sleep(400);
    }
    throw new Error(
      await this.explain(ref, `${ref} did not reach ${target} (${lastError || `${timeoutMs} ms`})`, history),
    );
  }

  async explain(ref: string, headline: string, history: StatusHistory = []): Promise<string> {
    const detail = await this.project(ref).catch((err: Error) => ({ text: `(failed: ${err.message})` }));
    const agents = [...this.agents.values()]
      .map((a) => `--- agent ${a.name} (last lines) ---\n${a.proc?.tail(30) ?? "(not running)"}`)
      .join("\n");
    return [
      headline,
      `status history: ${history.map((h) => `${h.status}@${h.atMs}ms`).join(" → ")}`,
      `project: ${detail.text}`,
      agents,
      `--- control plane (last lines) ---\n${this.cpOutput.slice(-30).join("\n")}`,
    ].join("\n");
  }

  /** Stop everything and remove every trace, collecting (not throwing) errors. */
  async cleanup(): Promise<string[]> {
    const errors: string[] = [];
    for (const a of this.agents.values()) {
      await a.proc?.stop("SIGTERM", 30_000).catch((err: Error) => errors.push(`agent ${a.name}: ${err.message}`));
    }
    await killAllAgents();
    await this.stopControlPlane().catch((err: Error) => errors.push(`control plane: ${err.message}`));
    await killAll();
    for (const ref of this.refs) errors.push(...(await removeProjectLeftovers(ref)).map((e) => `${ref} ${e}`));
    await this.#dropDb?.().catch((err: Error) => errors.push(`drop database: ${err.message}`));
    for (const d of this.#tmp) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch (err) {
        errors.push(`rm ${d}: ${(err as Error).message}`);
      }
    }
    return errors;
  }
}

export type StatusHistory = { status: string; atMs: number }[];

export interface HostJson {
  id: string;
  name: string;
  region: string;
  status: "online" | "offline";
  bind_address: string;
  compose: string | null;
  agent_version: string | null;
  agent_protocol?: number | null;
  agent_wanted_version?: string | null;
  agent_status?: string;
  agent_behind?: boolean;
  agent_status_reason?: string | null;
  capacity: {
    cpus: number | null;
    mem_total_bytes: number | null;
    mem_free_bytes: number | null;
    mem_reserved_bytes: number | null;
    load1: number | null;
  };
  project_count: number;
}

export interface ProjectJson {
  id: number;
  ref: string;
  name: string;
  status: string;
  region: string;
  db_host: string;
  db_port?: number;
  status_reason?: string;
  pending_reason?: string;
  [k: string]: unknown;
}

/** A client on the project's own Postgres (what people connect to with the db_pass they chose). */
export async function projectDb(host: string, port: number, password: string): Promise<pg.Client> {
  const client = new pg.Client({
    host,
    port,
    user: "postgres",
    database: "postgres",
    password,
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  return client;
}

/** Write a releases file with a release whose image can never be pulled (a registry on port 1). */
export function writeBrokenRelease(dir: string): string {
  const file = join(dir, "releases.json");
  writeFileSync(
    file,
    JSON.stringify({
      name: "broken",
      description: "an image no registry serves: every apply fails",
      services: {
        db: {
          image: "127.0.0.1:1/supamanager/does-not-exist:never",
          // A Compose interpolation reference, kept literal in the manifest.
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose syntax, not a JS template
          environment: { POSTGRES_PASSWORD: "${POSTGRES_PASSWORD}" },
          memoryShare: 0.5,
        },
      },
    }),
  );
  return file;
}
