import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { PasswordHasher } from "../../control-plane/src/crypto/password.js";
import { nativeScrypt } from "../../control-plane/src/entry/bootstrap.js";
import { type NeonProxy, startNeonProxy } from "../support/neon-proxy.js";
import { freshDatabase } from "../support/pg.js";
import { ProtocolAgent } from "../support/protocol-agent.js";
import { bundleWorker, removeBundle } from "../support/worker-bundle.js";
import { type LocalWorker, startLocalWorker, WORKER_SECRETS } from "../support/worker-runtime.js";

/**
 * The control plane as a Cloudflare Worker in real workerd (Miniflare runs the bundle wrangler
 * builds for deploy), on local PostgreSQL through the Neon driver and a WebSocket-to-TCP proxy,
 * with agents (at the protocol level) connected through their host's Durable Object.
 */

const DB_PASS = "s3cret-Pass-for-tests!";
const PASSWORD = "correct horse battery";

let proxy: NeonProxy;
let bundle: string;
const cleanups: (() => Promise<unknown>)[] = [];
const agents: ProtocolAgent[] = [];

beforeAll(async () => {
  bundle = await bundleWorker();
  proxy = await startNeonProxy();
}, 120_000);
afterEach(() => {
  for (const a of agents.splice(0)) a.ws.terminate();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await proxy?.close();
  if (bundle) await removeBundle(bundle);
});

/** A Worker on a fresh database (cloned from the migrated template), with `vars` on top. */
async function startWorker(
  vars: Record<string, string> = {},
  withSecrets = true,
): Promise<LocalWorker & { dbUrl: string }> {
  const db = await freshDatabase(inject("templateDatabase"));
  cleanups.push(db.drop);
  const worker = await startLocalWorker(bundle, {
    ...(withSecrets ? WORKER_SECRETS : {}),
    DATABASE_URL: db.url,
    SUPAMANAGER_NEON_WS_PROXY: proxy.wsProxy,
    SUPAMANAGER_NEON_INSECURE: "true",
    SUPAMANAGER_ALLOW_SIGNUP: "true",
    SUPAMANAGER_LOG_LEVEL: "silent",
    ...vars,
  });
  cleanups.push(() => worker.dispose());
  return Object.assign(worker, { dbUrl: db.url });
}

function client(worker: LocalWorker) {
  return async (path: string, init: { method?: string; token?: string; json?: unknown } = {}) => {
    const headers: Record<string, string> = {};
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    if (init.json !== undefined) headers["content-type"] = "application/json";
    return fetch(`${worker.url}${path}`, {
      method: init.method ?? "GET",
      headers,
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
    });
  };
}

async function json<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function connect(worker: LocalWorker, credential: string): Promise<ProtocolAgent> {
  const agent = await ProtocolAgent.connect(worker.url, credential);
  agents.push(agent);
  return agent;
}

/** An account, an organization and an enrolled host on `worker`. */
async function fixture(worker: LocalWorker) {
  const call = client(worker);
  await json(
    await call("/platform/signup", { method: "POST", json: { email: "a@example.test", password: PASSWORD } }),
    201,
  );
  const { access_token: token } = await json<{ access_token: string }>(
    await call("/auth/v1/token?grant_type=password", {
      method: "POST",
      json: { email: "a@example.test", password: PASSWORD },
    }),
    200,
  );
  const org = await json<{ slug: string }>(
    await call("/platform/organizations", { method: "POST", token, json: { name: "Edge", tier: "tier_free" } }),
    201,
  );
  const { token: joinToken } = await json<{ token: string }>(
    await call("/platform/fleet/join-tokens", { method: "POST", token, json: { region: "local" } }),
    201,
  );
  const host = await json<{ host_id: string; credential: string }>(
    await call("/agent/v1/join", { method: "POST", json: { token: joinToken, hostname: "edge-1" } }),
    201,
  );
  return { call, token, org, host };
}

const healthy = (ref: string) => ({
  type: "health",
  ref,
  services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
});

async function until(check: () => Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("the control plane on Workers (workerd + Neon driver + one Durable Object per host)", () => {
  let worker: LocalWorker & { dbUrl: string };
  let f: Awaited<ReturnType<typeof fixture>>;
  let ref: string;

  beforeAll(async () => {
    worker = await startWorker();
    f = await fixture(worker);
  }, 60_000);

  const status = async () =>
    (await json<{ status: string }>(await f.call(`/platform/projects/${ref}`, { token: f.token }), 200)).status;
  const query = (sql: string) =>
    f.call(`/platform/pg-meta/${ref}/query`, { method: "POST", token: f.token, json: { query: sql } });

  it("the account made through the Worker can read its profile (Neon driver, one pool per request)", async () => {
    const before = proxy.connections;
    const profile = await json<{ primary_email: string }>(await f.call("/platform/profile", { token: f.token }), 200);
    expect(profile.primary_email).toBe("a@example.test");
    // The request opened its own connection through the proxy (nothing is shared across requests).
    expect(proxy.connections).toBeGreaterThan(before);
  });

  it("passwords hashed in workerd (node:crypto scrypt under nodejs_compat) verify with Node's scrypt", async () => {
    const c = new pg.Client({ connectionString: worker.dbUrl });
    await c.connect();
    const { rows } = await c
      .query<{ password_hash: string }>("select password_hash from users where email = $1", ["a@example.test"])
      .finally(() => c.end());
    const hash = rows[0]?.password_hash ?? "";
    expect(hash).toMatch(/^\$scrypt\$ln=15,r=8,p=3\$/);
    const node = new PasswordHasher(nativeScrypt);
    expect(await node.verify(PASSWORD, hash)).toBe(true);
    expect(await node.verify("wrong password", hash)).toBe(false);
  });

  it("an agent says hello through its Durable Object, gets welcome and the new project's apply", async () => {
    const agent = await connect(worker, f.host.credential);
    agent.hello();
    const welcome = await agent.waitFor("welcome");
    expect(welcome.hostId).toBe(f.host.host_id);

    const project = await json<{ ref: string }>(
      await f.call("/platform/projects", {
        method: "POST",
        token: f.token,
        json: { name: "P", organization_slug: f.org.slug, db_pass: DB_PASS, db_region: "local" },
      }),
      201,
    );
    ref = project.ref;
    const apply = await agent.waitFor("apply");
    expect(apply).toMatchObject({ ref, version: 1, desiredState: "running" });

    agent.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
    agent.send(healthy(ref));
    await until(async () => (await status()) === "ACTIVE_HEALTHY");

    // SQL through the Worker's API: the Hub asks the host's object, which sends the rpc frame
    // on the agent's socket and hands the answer back to the waiting request.
    agent.answerRpc = (rpc) => ({ status: 200, body: [{ echoed: (rpc.body as { query: string }).query }] });
    const rows = await json<unknown[]>(await query("select 1 as one"), 201);
    expect(rows).toEqual([{ echoed: "select 1 as one" }]);
    const rpc = await agent.waitFor("rpc");
    expect(rpc).toMatchObject({ ref, service: "gateway", method: "POST", body: { query: "select 1 as one" } });
    // Bigger answers than the Workers message limit allows come back as `too_large` (413).
    expect(rpc.maxResultBytes).toBe(1024 * 1024 - 64 * 1024);
    agent.close();
    await agent.waitClosed();
  });

  it("without a connected agent the query answers 503 (the object holds no socket)", async () => {
    const res = await query("select 1");
    expect(res.status, await res.clone().text()).toBe(503);
  });

  it("a newer connection of the host replaces the older one (close 4000)", async () => {
    const first = await connect(worker, f.host.credential);
    first.hello([{ ref, appliedVersion: 1, state: "running" }]);
    await first.waitFor("welcome");
    const second = await connect(worker, f.host.credential);
    second.hello([{ ref, appliedVersion: 1, state: "running" }]);
    await second.waitFor("welcome");
    expect((await first.waitClosed()).code).toBe(4000);
    second.answerRpc = () => ({ status: 200, body: [{ via: "second" }] });
    expect(await json(await query("select 2"), 201)).toEqual([{ via: "second" }]);
  });

  it("agents reconnect after the objects restart (redeploy) and resync from their inventory", async () => {
    const agent = await connect(worker, f.host.credential);
    agent.hello([{ ref, appliedVersion: 1, state: "running" }]);
    await agent.waitFor("welcome");

    await worker.restart();
    await agent.waitClosed();

    const again = await connect(worker, f.host.credential);
    again.hello([{ ref, appliedVersion: 1, state: "running" }], "boot-1");
    await again.waitFor("welcome");
    // Nothing is behind: the inventory says version 1 runs, so no apply is sent.
    again.send({
      type: "heartbeat",
      capacity: { cpus: 4, memTotalBytes: 1, memFreeBytes: 1, memReservedBytes: 0, load1: 0 },
    });
    again.answerRpc = () => ({ status: 200, body: [{ after: "restart" }] });
    expect(await json(await query("select 3"), 201)).toEqual([{ after: "restart" }]);
    expect(again.frames.filter((fr) => fr.type === "apply")).toHaveLength(0);

    // A change made through the API reaches the new object's session at once (hub kick).
    await json(await f.call(`/platform/projects/${ref}/restart`, { method: "POST", token: f.token }), 200);
    const apply = await again.waitFor("apply");
    expect(apply).toMatchObject({ ref, desiredState: "running" });
    again.send({ type: "applied", ref, version: apply.version, desiredState: "running", ok: true });
    again.send(healthy(ref));
    await until(async () => (await status()) === "ACTIVE_HEALTHY");
  });

  it("a frame over the Workers message limit (1 MiB) closes that socket with 1009; the request gets 503", async () => {
    const agent = await connect(worker, f.host.credential);
    agent.hello([{ ref, appliedVersion: 1, state: "running" }]);
    await agent.waitFor("welcome");
    agent.answerRpc = () => ({ status: 200, body: [{ big: "x".repeat(1024 * 1024 + 1) }] });
    const res = await query("select big");
    expect(res.status).toBe(503);
    expect((await agent.waitClosed()).code).toBe(1009);
  });

  // Issue 14 (11) on Workers: the host's Durable Object drives the same HostSession and keeps the
  // host's frame budget across its connections (ADR 0029).
  it("a heartbeat flood is closed with 4029 by the object, and a reconnect right after gets no fresh burst", {
    timeout: 60_000,
  }, async () => {
    const agent = await connect(worker, f.host.credential);
    agent.hello([{ ref, appliedVersion: 1, state: "running" }]);
    await agent.waitFor("welcome");
    const heartbeat = {
      type: "heartbeat",
      capacity: {
        cpus: 4,
        memTotalBytes: 16 * 1024 ** 3,
        memFreeBytes: 8 * 1024 ** 3,
        memReservedBytes: 0,
        load1: 0.1,
      },
    };
    for (let i = 0; i < 1_100 && !agent.closed; i++) agent.send(heartbeat);
    const closed = await agent.waitClosed(30_000);
    expect(closed.code).toBe(4029);
    expect(closed.reason).toMatch(/^frame rate limit/);

    // The reconnect finds the bucket as the flood left it, not a fresh burst: 200 frames at once are
    // far more than the seconds since refilled (50 a second), so it is cut again.
    const again = await connect(worker, f.host.credential);
    again.hello([{ ref, appliedVersion: 1, state: "running" }]);
    for (let i = 0; i < 200 && !again.closed; i++) again.send(heartbeat);
    expect((await again.waitClosed(30_000)).code).toBe(4029);
    // Three seconds later there are 150 tokens: the host is welcomed again.
    await new Promise((r) => setTimeout(r, 3_000));
    const later = await connect(worker, f.host.credential);
    later.hello([{ ref, appliedVersion: 1, state: "running" }]);
    await later.waitFor("welcome");
    later.close();
    await later.waitClosed();
  });

  it("removing the host closes its socket through the object (close 4001)", async () => {
    const agent = await connect(worker, f.host.credential);
    agent.hello([{ ref, appliedVersion: 1, state: "running" }]);
    await agent.waitFor("welcome");
    // force: the project stays on the removed host (the operator's choice; see services/fleet/hosts.ts).
    const res = await f.call(`/platform/fleet/hosts/${f.host.host_id}?force=true`, {
      method: "DELETE",
      token: f.token,
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    expect((await agent.waitClosed()).code).toBe(4001);
  });
});

describe("liveness and configuration on Workers", () => {
  it("the object's alarm closes a socket that sent nothing within SUPAMANAGER_HOST_OFFLINE_SECONDS", async () => {
    const worker = await startWorker({
      SUPAMANAGER_HOST_OFFLINE_SECONDS: "2",
      SUPAMANAGER_HEARTBEAT_SECONDS: "1",
      SUPAMANAGER_STALE_SWEEP_SECONDS: "1",
    });
    const f = await fixture(worker);
    const agent = await connect(worker, f.host.credential);
    agent.hello();
    await agent.waitFor("welcome");
    // The agent goes silent (a half-open connection looks exactly like this to the object).
    expect(await agent.waitClosed(15_000)).toEqual({ code: 4003, reason: "no frames within the offline grace" });
  });

  it("missing secrets: 500 with a generic message, nothing of the configuration in the body", async () => {
    const worker = await startWorker({ SUPAMANAGER_JWT_SECRET: "x".repeat(40) }, false);
    const res = await client(worker)("/platform/profile");
    expect(res.status).toBe(500);
    const body = await res.text();
    expect(JSON.parse(body)).toEqual({
      message: "The control plane is misconfigured; see the Worker's logs",
      code: "internal",
    });
    expect(body).not.toContain("x".repeat(40));
  });

  it("SUPAMANAGER_ADMIN_EMAIL/PASSWORD: the admin account exists from the first request on", async () => {
    const worker = await startWorker({
      SUPAMANAGER_ALLOW_SIGNUP: "false",
      SUPAMANAGER_ADMIN_EMAIL: "admin@example.test",
      SUPAMANAGER_ADMIN_PASSWORD: "admin-password-1",
    });
    const login = await client(worker)("/auth/v1/token?grant_type=password", {
      method: "POST",
      json: { email: "admin@example.test", password: "admin-password-1" },
    });
    expect(login.status, await login.clone().text()).toBe(200);
  });

  it("the cron trigger runs the periodic work: a running job past its lease is failed", async () => {
    const worker = await startWorker();
    const { host } = await fixture(worker);
    const db = new pg.Client({ connectionString: worker.dbUrl });
    await db.connect();
    try {
      await db.query(
        "insert into jobs (id, host_id, kind, status, lease_until) values ('job_cron', $1, 'backup', 'running', now() - interval '1 minute')",
        [host.host_id],
      );
      // Miniflare's Fetcher runs scheduled() (its typings here only describe fetch).
      const fetcher = (await worker.mf.getWorker()) as unknown as {
        scheduled(o: { cron: string }): Promise<{ outcome: string }>;
      };
      const run = await fetcher.scheduled({ cron: "* * * * *" });
      expect(run.outcome).toBe("ok");
      const { rows } = await db.query("select status, error from jobs where id = 'job_cron'");
      expect(rows[0]).toEqual({ status: "failed", error: "the job did not finish within its lease" });
    } finally {
      await db.end();
    }
  });

  it("a host credential the control plane does not know gets 401 and no socket", async () => {
    const worker = await startWorker();
    await expect(ProtocolAgent.connect(worker.url, `smh_${"a".repeat(40)}`)).rejects.toThrow(/401/);
  });
});
