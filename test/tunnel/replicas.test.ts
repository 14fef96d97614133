import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http, { type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { createLogger } from "../../host-agent/src/log.js";
import { TunnelClient } from "../../host-agent/src/tunnel/client.js";
import { request, sleep } from "../fleet/fleet-harness.js";
import { freshDatabase } from "../support/pg.js";
import { type EntryProcess, ensureBuilt, startEntry } from "../support/process.js";

/**
 * The tunnel with several replicas (ADR 0035, "Several replicas"): two BUILT control-plane
 * processes A and B on ONE PostgreSQL database. The agent's tunnel client (the agent's own code)
 * holds the host's data connection on one replica; apps call the project by Host name on the
 * OTHER one, which must forward the request (and a WebSocket) to the holder, not fail it. A
 * local HTTP + WebSocket server stands in for the project's gateway (no Docker here; the real
 * gateway behind a NAT is test/tunnel/nat.test.ts).
 */

const MiB = 1024 * 1024;
const DOMAIN = "tunnel.test";
const ADMIN_EMAIL = "replica-tunnel@example.com";
const ADMIN_PASSWORD = "replica-tunnel-password-0123";

const tmp: string[] = [];
let dropDb: (() => Promise<void>) | undefined;
let dbUrl = "";
let A: EntryProcess | null = null;
let B: EntryProcess | null = null;
let gateway: Server;
let gatewayUrl = "";
let agent: TunnelClient | null = null;
let credential = "";
let hostId = "";
let ref = "";
let token = "";
const agentLogs: string[] = [];

function startGateway(): Promise<Server> {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://gw");
    if (url.pathname === "/rest/v1/echo") {
      res.writeHead(200, { "content-type": "application/json", "set-cookie": ["a=1", "b=2"] });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
      return;
    }
    if (url.pathname === "/upload") {
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.byteLength;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ bytes, sha256: hash.digest("hex") }));
      return;
    }
    if (url.pathname === "/download") {
      const n = Number(url.searchParams.get("bytes"));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(n) });
      res.end(block(0, n));
      return;
    }
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server, path: "/realtime/v1/websocket" });
  wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function block(from: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = ((from + i) * 7 + 13) & 0xff;
  return b;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request to the project by Host name, sent to replica `cp`. */
function call(
  cp: EntryProcess,
  path: string,
  opts: { method?: string; body?: Buffer; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const target = new URL(cp.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: opts.method ?? "GET",
        path,
        headers: { host: `${ref}.${DOMAIN}`, ...opts.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

async function holder(): Promise<string | null> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ replica_url: string }>(
      "select replica_url from host_tunnels where host_id = $1",
      [hostId],
    );
    return rows[0]?.replica_url ?? null;
  } finally {
    await client.end();
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(
    `timed out waiting for ${what}\n--- agent ---\n${agentLogs.slice(-15).join("\n")}` +
      `\n--- A ---\n${A?.output.slice(-15).join("\n")}\n--- B ---\n${B?.output.slice(-15).join("\n")}`,
  );
}

/** The agent's tunnel client, dialling replica `cp` directly. */
function dial(cp: EntryProcess): TunnelClient {
  const client = new TunnelClient({
    url: cp.url,
    credential,
    logger: createLogger({ level: "debug", write: (l) => agentLogs.push(l) }),
    gateway: async (r) => (r === ref ? gatewayUrl : null),
    pingMs: 1_000,
    backoff: { baseMs: 100, capMs: 500 },
  });
  client.start();
  return client;
}

beforeAll(async () => {
  ensureBuilt();
  const db = await freshDatabase(inject("templateDatabase"));
  dropDb = db.drop;
  dbUrl = db.url;
  const env = {
    NODE_ENV: "production",
    SUPAMANAGER_JWT_SECRET: "replica-tunnel-jwt-secret-0123456789abcdef0123",
    SUPAMANAGER_ENCRYPTION_KEY: "3a".repeat(32),
    DATABASE_URL: db.url,
    DATABASE_POOL_MAX: "4",
    SUPAMANAGER_ADMIN_EMAIL: ADMIN_EMAIL,
    SUPAMANAGER_ADMIN_PASSWORD: ADMIN_PASSWORD,
    SUPAMANAGER_TUNNEL_DOMAIN: DOMAIN,
    SUPAMANAGER_TUNNEL_MAX_REQUEST_BYTES: String(64 * MiB),
  };
  const dir = (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `supamanager-tunnel-replicas-${name}-`));
    tmp.push(d);
    return d;
  };
  [A, B] = await Promise.all([
    startEntry({ ...env, SUPAMANAGER_DATA_DIR: dir("a") }, { timeoutMs: 120_000 }),
    startEntry({ ...env, SUPAMANAGER_DATA_DIR: dir("b") }, { timeoutMs: 120_000 }),
  ]);
  const b = B;
  const login = await request<{ access_token: string }>(b, "POST", "/auth/v1/token?grant_type=password", {
    email: ADMIN_EMAIL,
    password: ADMIN_PASSWORD,
  });
  expect(login.status, login.text).toBe(200);
  token = login.body.access_token;
  const as = { url: b.url, token };
  const org = await request<{ slug: string }>(as, "POST", "/platform/organizations", {
    name: "Tunnel replicas",
    tier: "tier_free",
  });
  expect(org.status, org.text).toBe(201);
  const tok = await request<{ token: string }>(as, "POST", "/platform/fleet/join-tokens", { region: "local" });
  expect(tok.status, tok.text).toBe(201);
  const joined = await request<{ host_id: string; credential: string }>(b, "POST", "/agent/v1/join", {
    token: tok.body.token,
    hostname: "behind-nat",
  });
  expect(joined.status, joined.text).toBe(201);
  hostId = joined.body.host_id;
  credential = joined.body.credential;
  // The host's control connection is not part of this test: its capacity is written as a
  // heartbeat would, so the project can be placed on it.
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(
    `update hosts set last_seen_at = now(), cpus = 4, mem_total_bytes = $2, mem_free_bytes = $2,
       mem_reserved_bytes = 0, load1 = '0' where id = $1`,
    [hostId, 16 * 1024 * MiB],
  );
  await client.end();
  const patch = await request(as, "PATCH", `/platform/fleet/hosts/${hostId}`, { reachability: "tunnel" });
  expect(patch.status, patch.text).toBe(200);
  const project = await request<{ ref: string }>(as, "POST", "/platform/projects", {
    name: "Behind NAT",
    organization_slug: org.body.slug,
    db_pass: "a-long-database-password-0123",
    cloud_provider: "AWS",
    db_region: "local",
  });
  expect(project.status, project.text).toBe(201);
  ref = project.body.ref;

  gateway = await startGateway();
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  const a = A;
  agent = dial(a);
  await waitFor("A to hold the host's tunnel", async () => (await holder()) === a.url);
}, 240_000);

afterAll(async () => {
  agent?.stop();
  if (gateway) {
    gateway.closeAllConnections();
    await new Promise((r) => gateway.close(r));
  }
  await A?.stop().catch(() => {});
  await B?.stop().catch(() => {});
  await dropDb?.().catch(() => {});
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

describe("the tunnel with two replicas on one database", () => {
  it("B forwards a request for a host whose tunnel A holds; the client's address survives the hop", async () => {
    const res = await call(B as EntryProcess, "/rest/v1/echo?select=*", { headers: { apikey: "anon-key" } });
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    const seen = JSON.parse(res.body.toString()) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe("/rest/v1/echo?select=*");
    expect(seen.headers.apikey).toBe("anon-key");
    expect(seen.headers.host).toBe(`${ref}.${DOMAIN}`);
    // The client's address as B saw it, not B's address as A saw it; the hop token stays inside.
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen.headers["x-supamanager-tunnel-hop"]).toBeUndefined();
  });

  it("a client's own hop header is not believed", async () => {
    const res = await call(A as EntryProcess, "/rest/v1/echo", {
      headers: {
        "x-supamanager-tunnel-hop": `${Math.floor(Date.now() / 1000)}.forged`,
        "x-forwarded-for": "203.0.113.7",
      },
    });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body.toString()) as { headers: Record<string, string> };
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen.headers["x-supamanager-tunnel-hop"]).toBeUndefined();
  });

  it("streams a 16 MiB upload and download through B → A → agent intact", { timeout: 60_000 }, async () => {
    const size = 16 * MiB;
    const body = block(5, size);
    const up = await call(B as EntryProcess, "/upload", { method: "POST", body });
    expect(up.status, up.body.toString()).toBe(200);
    expect(JSON.parse(up.body.toString())).toEqual({
      bytes: size,
      sha256: createHash("sha256").update(body).digest("hex"),
    });
    const down = await call(B as EntryProcess, `/download?bytes=${size}`);
    expect(down.status).toBe(200);
    expect(down.body.byteLength).toBe(size);
    expect(createHash("sha256").update(down.body).digest("hex")).toBe(
      createHash("sha256").update(block(0, size)).digest("hex"),
    );
  });

  it("relays a WebSocket through B → A", async () => {
    const b = new URL((B as EntryProcess).url);
    const ws = new WebSocket(`ws://127.0.0.1:${b.port}/realtime/v1/websocket`, {
      headers: { host: `${ref}.${DOMAIN}` },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const big = block(3, 2 * MiB);
    const echoes: Buffer[] = [];
    ws.on("message", (d: Buffer) => echoes.push(d));
    ws.send("hello");
    ws.send(big);
    await waitFor("both echoes", () => echoes.length === 2);
    expect(echoes[0]?.toString()).toBe("hello");
    expect(echoes[1]?.equals(big)).toBe(true);
    ws.close();
  });

  it("with no tunnel anywhere B answers 503; once the agent dials B, A forwards to B", {
    timeout: 60_000,
  }, async () => {
    agent?.stop();
    await waitFor("A to forget the tunnel", async () => (await holder()) === null);
    const none = await call(B as EntryProcess, "/rest/v1/echo");
    expect(none.status).toBe(503);
    expect(JSON.parse(none.body.toString())).toMatchObject({ code: "unavailable" });

    const b = B as EntryProcess;
    agent = dial(b);
    await waitFor("B to hold the host's tunnel", async () => (await holder()) === b.url);
    const res = await call(A as EntryProcess, "/rest/v1/echo");
    expect(res.status, res.body.toString()).toBe(200);
  });

  it("a holder that died answers a quick 503 from the other replica, not a hang", { timeout: 60_000 }, async () => {
    // B holds the tunnel; kill it without letting it clear its row.
    await (B as EntryProcess).stop("SIGKILL");
    B = null;
    agent?.stop();
    agent = null;
    const res = await call(A as EntryProcess, "/rest/v1/echo");
    expect(res.status).toBe(503);
    const body = JSON.parse(res.body.toString()) as { code: string; message: string };
    expect(body.code).toBe("unavailable");
    expect(body.message).toContain("replica holding the tunnel");
    // No internal address in what an app sees.
    expect(body.message).not.toContain("127.0.0.1");
  });
});
