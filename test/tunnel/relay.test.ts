import { createHash } from "node:crypto";
import http, { type Server } from "node:http";
import net, { type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { createNodeServer } from "../../control-plane/src/entry/agent-socket.js";
import { TunnelRelay } from "../../control-plane/src/entry/tunnel.js";
import { signUpAndLogin } from "../../control-plane/src/test-support/factories.js";
import { enrollHost } from "../../control-plane/src/test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../control-plane/src/test-support/harness.js";
import { createOrg, createProjectViaApi } from "../../control-plane/src/test-support/projects-factory.js";
import { createLogger } from "../../host-agent/src/log.js";
import { TunnelClient } from "../../host-agent/src/tunnel/client.js";

/**
 * The tunnel end to end without Docker (ADR 0035): the control plane's Node server with its
 * relay, the agent's tunnel client (the agent's own code) dialling it through a TCP proxy that can
 * cut the link, and a local HTTP + WebSocket server standing in for the project's gateway.
 * Clients call the project by Host name, as apps would call https://<ref>.<tunnel domain>.
 */

const MiB = 1024 * 1024;
const DOMAIN = "tunnel.test";

let t: TestApp;
let relay: TunnelRelay;
let cp: Server;
let cpPort = 0;
let gateway: Server;
let gatewayUrl = "";
let proxy: LinkProxy;
let agent: TunnelClient;
let ref = "";
let hostId = "";
const agentLogs: string[] = [];

/** A TCP proxy agent → control plane whose link can be cut (nothing passes, nothing closes) and healed. */
class LinkProxy {
  readonly server: net.Server;
  port = 0;
  #cut = false;
  readonly #pairs = new Set<[Socket, Socket]>();
  constructor(target: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target, "127.0.0.1");
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      const forward = (from: Socket, to: Socket) =>
        from.on("data", (d) => {
          if (!this.#cut) to.write(d);
        });
      forward(client, upstream);
      forward(upstream, client);
      const done = () => {
        client.destroy();
        upstream.destroy();
        this.#pairs.delete(pair);
      };
      client.on("close", done).on("error", done);
      upstream.on("close", done).on("error", done);
    });
  }
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as AddressInfo).port;
  }
  /** Like a DROP rule: bytes vanish, no FIN or RST reaches either side. */
  cut(): void {
    this.#cut = true;
  }
  /** The link works again; connections frozen during the cut are dropped (their peers gave up on them). */
  heal(): void {
    this.#cut = false;
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
  }
}

/** The stand-in gateway: echo, upload checksum, deterministic download, a request that never answers, WS echo. */
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
      let sent = 0;
      const write = () => {
        while (sent < n) {
          const piece = block(sent, Math.min(256 * 1024, n - sent));
          sent += piece.byteLength;
          if (!res.write(piece)) return void res.once("drain", write);
        }
        res.end();
      };
      write();
      return;
    }
    if (url.pathname === "/never") return; // keeps the request open
    if (url.pathname === "/truncated") {
      // Promises 4 MiB, sends 256 KiB, then the connection drops (a crashed upstream).
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(4 * MiB) });
      res.write(block(0, 256 * 1024), () => setTimeout(() => res.socket?.destroy(), 50));
      return;
    }
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server, path: "/realtime/v1/websocket" });
  wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Deterministic bytes at offset `from` (so the client can check a download without holding it). */
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

/** A request to the project by Host name, as an app would make it. */
function call(
  path: string,
  opts: {
    method?: string;
    body?: Buffer | AsyncIterable<Buffer>;
    headers?: Record<string, string>;
    host?: string;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: cpPort,
        method: opts.method ?? "GET",
        path,
        headers: { host: opts.host ?? `${ref}.${DOMAIN}`, ...opts.headers },
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
    const body = opts.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else
      void (async () => {
        for await (const chunk of body) if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
        req.end();
      })();
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; agent log:\n${agentLogs.slice(-20).join("\n")}`);
}

beforeAll(async () => {
  t = await createTestApp({
    SUPAMANAGER_ALLOW_SIGNUP: "true",
    SUPAMANAGER_TUNNEL_DOMAIN: DOMAIN,
    SUPAMANAGER_TUNNEL_RESPONSE_TIMEOUT_SECONDS: "2",
    SUPAMANAGER_TUNNEL_MAX_REQUEST_BYTES: String(60 * MiB),
  });
  relay = new TunnelRelay(t.deps, { pingMs: 300, routeCacheMs: 0 });
  t.deps.tunnelUpgrade = relay.upgrade;
  cp = createNodeServer(t.app, { tunnel: relay }).server;
  await new Promise<void>((r) => cp.listen(0, "127.0.0.1", r));
  cpPort = (cp.address() as AddressInfo).port;

  const admin = await signUpAndLogin(t);
  const org = await createOrg(t, admin);
  const host = await enrollHost(t, admin);
  hostId = host.hostId;
  ref = (await createProjectViaApi(t, admin, org)).ref;
  const patch = await t.request(`/platform/fleet/hosts/${hostId}`, {
    method: "PATCH",
    token: admin.token,
    json: { reachability: "tunnel" },
  });
  expect(patch.status).toBe(200);

  gateway = await startGateway();
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  proxy = new LinkProxy(cpPort);
  await proxy.listen();
  agent = new TunnelClient({
    url: `http://127.0.0.1:${proxy.port}`,
    credential: host.credential,
    logger: createLogger({ level: "debug", write: (l) => agentLogs.push(l) }),
    gateway: async (r) => (r === ref ? gatewayUrl : null),
    pingMs: 300,
    backoff: { baseMs: 100, capMs: 500 },
  });
  agent.start();
  await waitFor("the agent's tunnel", () => relay.connectedHosts.includes(hostId));
}, 120_000);

afterAll(async () => {
  agent?.stop();
  relay?.closeAll();
  cp?.closeAllConnections?.();
  await new Promise((r) => cp?.close(r));
  gateway?.closeAllConnections?.();
  await new Promise((r) => gateway?.close(r));
  await new Promise((r) => proxy?.server.close(r));
  await t?.close();
});

describe("the tunnel on Node", () => {
  it("relays a REST-style request and its answer, passing the client's address on", async () => {
    const res = await call("/rest/v1/echo?select=*&id=eq.1", {
      headers: { apikey: "anon-key", "x-forwarded-for": "203.0.113.9" },
    });
    expect(res.status).toBe(200);
    expect(res.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    const seen = JSON.parse(res.body.toString()) as { method: string; url: string; headers: Record<string, string> };
    expect(seen.method).toBe("GET");
    expect(seen.url).toBe("/rest/v1/echo?select=*&id=eq.1");
    // The key is passed through untouched: the gateway checks it, not the tunnel.
    expect(seen.headers.apikey).toBe("anon-key");
    expect(seen.headers.host).toBe(`${ref}.${DOMAIN}`);
    // Without SUPAMANAGER_TRUST_PROXY a client's own X-Forwarded-For is not believed.
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen.headers["x-forwarded-host"]).toBe(`${ref}.${DOMAIN}`);
  });

  it("streams a 50 MB upload and a 50 MB download intact", async () => {
    const size = 50 * MiB;
    const hash = createHash("sha256");
    async function* body() {
      for (let off = 0; off < size; off += MiB) {
        const piece = block(off, Math.min(MiB, size - off));
        hash.update(piece);
        yield piece;
      }
    }
    const up = await call("/upload", { method: "POST", body: body(), headers: { "content-length": String(size) } });
    expect(up.status).toBe(200);
    expect(JSON.parse(up.body.toString())).toEqual({ bytes: size, sha256: hash.digest("hex") });

    const down = await call(`/download?bytes=${size}`);
    expect(down.status).toBe(200);
    expect(down.body.byteLength).toBe(size);
    expect(createHash("sha256").update(down.body).digest("hex")).toBe(
      createHash("sha256").update(block(0, size)).digest("hex"),
    );
  }, 120_000);

  it("relays a WebSocket upgrade (Realtime) both ways", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${cpPort}/realtime/v1/websocket?apikey=x&vsn=1.0.0`, {
      headers: { host: `${ref}.${DOMAIN}` },
    });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const echoes: string[] = [];
    ws.on("message", (d) => echoes.push(d.toString()));
    for (let i = 0; i < 20; i++) ws.send(`hello ${i}`);
    const big = Buffer.alloc(3 * MiB, 7);
    ws.send(big);
    await waitFor("20 echoes and the big one", () => echoes.length === 21);
    expect(echoes.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => `hello ${i}`));
    expect(echoes[20]?.length).toBe(big.byteLength);
    ws.close();
  });

  it("cuts a response short at once when the project's gateway drops the connection mid-answer", async () => {
    const started = Date.now();
    const outcome = await new Promise<{ complete: boolean; bytes: number }>((resolve) => {
      const req = http.get(
        { host: "127.0.0.1", port: cpPort, path: "/truncated", headers: { host: `${ref}.${DOMAIN}` }, agent: false },
        (res) => {
          let bytes = 0;
          res.on("data", (c: Buffer) => {
            bytes += c.byteLength;
          });
          res.on("end", () => resolve({ complete: res.complete, bytes }));
          res.on("error", () => resolve({ complete: false, bytes }));
        },
      );
      req.on("error", () => resolve({ complete: false, bytes: 0 }));
    });
    expect(outcome.complete).toBe(false);
    expect(outcome.bytes).toBeLessThan(4 * MiB);
    // The agent resets the stream when its gateway connection breaks: the client is not left
    // waiting for the relay's idle timeout (300 s here).
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 10_000);

  it("answers unknown projects 404, oversize bodies 413, and a silent project 504", async () => {
    const unknown = await call("/rest/v1/echo", { host: `zzzzzzzzzzzzzzzzzzzz.${DOMAIN}` });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body.toString()).message).toMatch(/No project/);
    const big = await call("/upload", {
      method: "POST",
      headers: { "content-length": String(61 * MiB) },
      body: Buffer.alloc(0),
    }).catch((err: Error) => ({ status: -1, body: Buffer.from(err.message), headers: {} }));
    expect(big.status).toBe(413);
    const started = Date.now();
    const silent = await call("/never");
    expect(silent.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(5_000);
    // A request without a tunnel Host reaches the platform API as ever.
    const health = await call("/health", { host: `127.0.0.1:${cpPort}` });
    expect(health.status).toBe(200);
  });

  it("fails in-flight requests fast when the link is cut, and serves new ones after it heals", async () => {
    const inflight = call("/never");
    await new Promise((r) => setTimeout(r, 200));
    const cutAt = Date.now();
    proxy.cut();
    const failed = await inflight;
    const failedAfter = Date.now() - cutAt;
    expect(failed.status).toBe(502);
    expect(JSON.parse(failed.body.toString()).message).toMatch(/tunnel/);
    expect(failedAfter).toBeLessThan(1_900); // before the 2 s response timeout: the dead link was noticed
    const during = await call("/rest/v1/echo");
    expect(during.status).toBe(503);
    expect(JSON.parse(during.body.toString()).message).toMatch(/no tunnel connection/);
    proxy.heal();
    await waitFor("the tunnel to come back", () => relay.connectedHosts.includes(hostId));
    const after = await call("/rest/v1/echo");
    expect(after.status).toBe(200);
  }, 30_000);
});
