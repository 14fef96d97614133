import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type AgentProcess, ensureAgentBuilt, joinAgent, killAllAgents, runAgent } from "../support/agent-process.js";
import { removeProjectLeftovers } from "../support/docker.js";
import { freshDatabase } from "../support/pg.js";
import { type EntryProcess, killAll, startEntry } from "../support/process.js";
import { startFailoverProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { ADMIN_EMAIL, ADMIN_PASSWORD, LOCAL_IMAGES_FILE, prerequisites, request, sleep } from "./fleet-harness.js";

/**
 * Two BUILT control-plane processes (replicas A and B) on ONE PostgreSQL database, behind a
 * failover TCP proxy that sends every connection to A while A is up, and a real built agent
 * enrolled through the proxy (so its socket is held by A). Everything the test asks for goes to
 * B: the work B records must reach the agent through A (LISTEN/NOTIFY, ADR 0014), pg-meta queries
 * on B must be answered through A, and when A is SIGKILLed the agent must reconnect (through the
 * proxy) to B and go on working.
 */

const CI = process.env.CI === "true";
const pre = await prerequisites();
if (!pre.ok && !CI) {
  console.warn(`\n!!! SKIPPING the replica end-to-end test: ${pre.why}.\n`);
}

const PASS = "replica-test-password-0123";
const tmp: string[] = [];
const tmpDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), `supamanager-replicas-${prefix}-`));
  tmp.push(d);
  return d;
};

let dropDb: (() => Promise<void>) | undefined;
let A: EntryProcess | null = null;
let B: EntryProcess | null = null;
let proxy: TcpProxy | undefined;
let agent: AgentProcess | undefined;
let hostId = "";
let token = "";
let orgSlug = "";
let ref = "";

/** A call to replica `cp` (as the admin once logged in); `at` is when its answer was read. */
async function api<T = unknown>(cp: EntryProcess, method: string, path: string, json?: unknown) {
  return { ...(await request<T>({ url: cp.url, token }, method, path, json)), at: Date.now() };
}

function explain(headline: string): string {
  return [
    headline,
    `--- agent ---\n${agent?.tail(30) ?? "(none)"}`,
    `--- A ---\n${A?.output.slice(-20).join("\n") ?? "(gone)"}`,
    `--- B ---\n${B?.output.slice(-20).join("\n") ?? "(gone)"}`,
  ].join("\n");
}

async function waitForStatus(target: string, timeoutMs = 150_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (!B) throw new Error("B is not running");
    const r = await api<{ status: string }>(B, "GET", `/platform/projects/${ref}/status`).catch(() => null);
    last = r?.status === 200 ? r.body.status : `HTTP ${r?.status}`;
    if (last === target) return;
    if (last.endsWith("_FAILED")) break;
    await sleep(300);
  }
  throw new Error(explain(`${ref} did not reach ${target}; last ${last}`));
}

/** The log lines of `cp` saying an agent of our host connected. */
const connectedLines = (cp: EntryProcess) =>
  cp.stdout.filter((l) => l.includes('"agent connected"') && l.includes(hostId));

describe.skipIf(!pre.ok && !CI)("several control-plane replicas on one PostgreSQL database", () => {
  beforeAll(async () => {
    ensureAgentBuilt();
    const db = await freshDatabase(inject("templateDatabase"));
    dropDb = db.drop;
    const env = {
      NODE_ENV: "production",
      SUPAMANAGER_JWT_SECRET: "replicas-e2e-jwt-secret-0123456789abcdef012345",
      SUPAMANAGER_ENCRYPTION_KEY: "2f".repeat(32),
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: "5",
      SUPAMANAGER_ADMIN_EMAIL: ADMIN_EMAIL,
      SUPAMANAGER_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SUPAMANAGER_LOCAL_IMAGES_FILE: LOCAL_IMAGES_FILE,
      SUPAMANAGER_HOST_OFFLINE_SECONDS: "6",
      SUPAMANAGER_HEARTBEAT_SECONDS: "1",
      SUPAMANAGER_PORT_RANGE: "27500-27999",
    };
    // Started together: the migration advisory lock lets one migrate while the other waits.
    [A, B] = await Promise.all([
      startEntry({ ...env, SUPAMANAGER_DATA_DIR: tmpDir("a") }, { timeoutMs: 60_000 }),
      startEntry({ ...env, SUPAMANAGER_DATA_DIR: tmpDir("b") }, { timeoutMs: 60_000 }),
    ]);
    proxy = await startFailoverProxy([Number(new URL(A.url).port), Number(new URL(B.url).port)]);

    const login = await api<{ access_token: string }>(B, "POST", "/auth/v1/token?grant_type=password", {
      email: ADMIN_EMAIL,
      password: ADMIN_PASSWORD,
    });
    expect(login.status, login.text).toBe(200);
    token = login.body.access_token;
    const org = await api<{ slug: string }>(B, "POST", "/platform/organizations", {
      name: "Replicas",
      tier: "tier_free",
    });
    expect(org.status, org.text).toBe(201);
    orgSlug = org.body.slug;

    const tok = await api<{ token: string }>(B, "POST", "/platform/fleet/join-tokens", { region: "local" });
    expect(tok.status, tok.text).toBe(201);
    const dataDir = join(tmpDir("agent"), "data");
    // The agent knows only the proxy's URL, as it would know only the load balancer's.
    const joined = await joinAgent({ url: proxy.url, token: tok.body.token, dataDir, bindAddress: "127.0.0.1" });
    expect(joined.code, joined.output).toBe(0);
    hostId = /"host_id":"(host_[a-z0-9]+)"/.exec(joined.output)?.[1] ?? "";
    expect(hostId).not.toBe("");
    agent = runAgent(dataDir);
    await agent.waitForLog((l) => l.msg === "connected", 30_000);
    // Welcomed (hello recorded, last_seen_at fresh) before any project is placed on it.
    const b = B;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const hosts = await api<{ id: string; status: string }[]>(b, "GET", "/platform/fleet/hosts");
      if (hosts.status === 200 && hosts.body.some((h) => h.id === hostId && h.status === "online")) break;
      if (Date.now() > deadline) throw new Error(explain(`host ${hostId} did not come online: ${hosts.text}`));
      await sleep(200);
    }
  }, 180_000);

  afterAll(async () => {
    await agent?.stop("SIGTERM", 30_000).catch(() => {});
    await killAllAgents();
    await proxy?.close();
    await A?.stop().catch(() => {});
    await B?.stop().catch(() => {});
    await killAll();
    if (ref) await removeProjectLeftovers(ref);
    await dropDb?.();
    for (const d of tmp) rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it("a project created through B is applied by the agent whose socket A holds", { timeout: 200_000 }, async () => {
    if (!A || !B) throw new Error("replicas not started");
    const a = A;
    const b = B;
    // The agent's socket is on A (the proxy prefers A), never on B.
    const deadline = Date.now() + 10_000;
    while (connectedLines(a).length === 0 && Date.now() < deadline) await sleep(100);
    expect(connectedLines(a).length, explain("agent not on A")).toBeGreaterThan(0);
    expect(connectedLines(b)).toHaveLength(0);

    const created = await api<{ ref: string }>(b, "POST", "/platform/projects", {
      name: "replicated",
      organization_slug: orgSlug,
      db_pass: PASS,
      db_region: "local",
      desired_instance_size: "nano",
    });
    expect(created.status, created.text).toBe(201);
    ref = created.body.ref;
    const applied = await agent?.waitForLog((l) => l.msg === "apply received" && l.ref === ref, 10_000);
    console.info(
      `[replicas] create via B → agent on A logged "apply received" ${Date.parse(String(applied?.ts)) - created.at} ms after B's response`,
    );
    await waitForStatus("ACTIVE_HEALTHY");
  });

  it("a pg-meta query on B is answered through the agent's socket on A", { timeout: 60_000 }, async () => {
    if (!B) throw new Error("B not running");
    const res = await api<{ one: number }[]>(B, "POST", `/platform/pg-meta/${ref}/query`, {
      query: "select 1 as one",
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toEqual([{ one: 1 }]);
  });

  it("a pause through B reaches the agent on A (kick latency recorded)", { timeout: 120_000 }, async () => {
    if (!B) throw new Error("B not running");
    const paused = await api(B, "POST", `/platform/projects/${ref}/pause`);
    expect(paused.status, paused.text).toBe(200);
    const line = await agent?.waitForLog(
      (l) => l.msg === "apply received" && l.ref === ref && l.desiredState === "paused",
      10_000,
    );
    console.info(
      `[replicas] pause via B → agent on A logged "apply received" ${Date.parse(String(line?.ts)) - paused.at} ms after B's response`,
    );
    await waitForStatus("INACTIVE");
  });

  it("after A is SIGKILLed the agent reconnects to B, which restores the project and answers queries", {
    timeout: 200_000,
  }, async () => {
    if (!A || !B) throw new Error("replicas not started");
    const b = B;
    const connectedBefore = agent?.logs().filter((l) => l.msg === "connected").length ?? 0;
    await A.stop("SIGKILL");
    A = null;
    await agent?.waitForLog(
      (l) =>
        l.msg === "connected" && (agent?.logs().filter((x) => x.msg === "connected").length ?? 0) > connectedBefore,
      60_000,
    );
    const deadline = Date.now() + 15_000;
    while (connectedLines(b).length === 0 && Date.now() < deadline) await sleep(100);
    expect(connectedLines(b).length, explain("agent did not reconnect to B")).toBeGreaterThan(0);

    const restored = await api(b, "POST", `/platform/projects/${ref}/restore`, {});
    expect(restored.status, restored.text).toBe(200);
    await waitForStatus("ACTIVE_HEALTHY");
    const res = await api<{ one: number }[]>(b, "POST", `/platform/pg-meta/${ref}/query`, {
      query: "select 1 as one",
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toEqual([{ one: 1 }]);
  });
});
