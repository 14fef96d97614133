import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type AgentProcess, ensureAgentBuilt, joinAgent, killAllAgents, runAgent } from "../support/agent-process.js";
import { type NeonProxy, startNeonProxy } from "../support/neon-proxy.js";
import { freshDatabase } from "../support/pg.js";
import { bundleWorker, removeBundle } from "../support/worker-bundle.js";
import { type LocalWorker, startLocalWorker, WORKER_SECRETS } from "../support/worker-runtime.js";

/**
 * The real host agent (the built CLI, as an operator runs it) against the Worker in workerd:
 * join, connect through the host's Durable Object, and come back on its own after workerd
 * restarts (a redeploy drops every socket).
 */

let proxy: NeonProxy;
let worker: LocalWorker;
let drop: () => Promise<void>;
let agent: AgentProcess | undefined;
let bundle: string | undefined;
const dataDir = mkdtempSync(join(tmpdir(), "supamanager-edge-agent-"));

beforeAll(async () => {
  ensureAgentBuilt();
  bundle = await bundleWorker();
  proxy = await startNeonProxy();
  const db = await freshDatabase(inject("templateDatabase"));
  drop = db.drop;
  worker = await startLocalWorker(bundle, {
    ...WORKER_SECRETS,
    DATABASE_URL: db.url,
    SUPAMANAGER_NEON_WS_PROXY: proxy.wsProxy,
    SUPAMANAGER_NEON_INSECURE: "true",
    SUPAMANAGER_LOG_LEVEL: "silent",
  });
}, 240_000);

afterAll(async () => {
  await agent?.stop();
  await killAllAgents();
  await worker?.dispose();
  await proxy?.close();
  await drop?.();
  if (bundle) await removeBundle(bundle);
  rmSync(dataDir, { recursive: true, force: true });
});

async function post<T>(path: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(`${worker.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  expect(res.status, text).toBeLessThan(300);
  return JSON.parse(text) as T;
}

const welcomes = () => (agent?.logs() ?? []).filter((l) => l.msg === "welcomed").length;

async function until(check: () => boolean | Promise<boolean>, ms: number) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`condition not reached; agent output:\n${agent?.output.slice(-20).join("\n")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the real host agent on the Workers control plane", () => {
  it("joins, is welcomed through its Durable Object, reports online, and reconnects after a restart", async () => {
    const email = "ops@example.test";
    const password = "correct horse battery";
    await post("/platform/signup", { email, password });
    const { access_token: token } = await post<{ access_token: string }>("/auth/v1/token?grant_type=password", {
      email,
      password,
    });
    const { token: joinToken } = await post<{ token: string }>(
      "/platform/fleet/join-tokens",
      { region: "local" },
      token,
    );
    const joined = await joinAgent({ url: worker.url, token: joinToken, dataDir, name: "edge-agent" });
    expect(joined.code, joined.output).toBe(0);

    agent = runAgent(dataDir);
    await until(() => welcomes() >= 1, 30_000);
    const hosts = async () => {
      const res = await fetch(`${worker.url}/platform/fleet/hosts`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      return JSON.stringify(await res.json());
    };
    expect(await hosts()).toContain("edge-agent");

    await worker.restart();
    // The agent notices the dropped socket, backs off, reconnects to the new objects and says hello.
    await until(() => welcomes() >= 2, 60_000);
    expect((agent.logs() ?? []).some((l) => l.msg === "disconnected")).toBe(true);
  });
});
