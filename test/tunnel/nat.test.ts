import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_RELEASE } from "../../control-plane/src/releases/local.js";
import { type AgentProcess, ensureAgentBuilt, runAgent, spawnAgent } from "../support/agent-process.js";
import { dockerAvailable, removeProjectLeftovers } from "../support/docker.js";
import { ENTRY, entryEnv, REPO_ROOT } from "../support/process.js";

/**
 * A host behind NAT, end to end on the real Docker engine (issue 15, ADR 0035). The Docker host
 * (this machine's own namespace, where the agent and the project's containers run) reaches "the
 * internet" only through a router namespace that masquerades its traffic and drops every NEW
 * connection coming back in; the control plane runs out there, in its own namespace, on PGlite.
 * Apps call the project by its tunnel name at the control plane; the agent's outbound tunnel
 * carries the traffic to the project's real gateway (the `local` release's, with one more route:
 * /blob/ to a small Node service, nat-blob.mjs, for 50 MB bodies both ways and a WebSocket echo,
 * which postgres-meta alone cannot serve).
 *
 *   [root ns: agent + Docker] smh0 10.X.1.1 ── 10.X.1.2 smn0 [router ns: MASQUERADE, DROP new inbound]
 *                                              smn1 10.X.2.1 ── 10.X.2.2 smo0 [outside ns: control plane]
 */

const LOCAL_IMAGES_FILE = join(REPO_ROOT, "images/manifest.local.json");
const SUFFIX = Math.random().toString(36).slice(2, 6);
const NET = 200 + Math.floor(Math.random() * 50);
const NS_ROUTER = `smnat-r-${SUFFIX}`;
const NS_OUT = `smnat-o-${SUFFIX}`;
const IF_HOST = `smh${SUFFIX}`;
const IF_ROUTER_IN = `smn${SUFFIX}`;
const IF_ROUTER_OUT = `smr${SUFFIX}`;
const IF_OUT = `smo${SUFFIX}`;
const HOST_ADDR = `10.${NET}.1.1`;
const ROUTER_IN_ADDR = `10.${NET}.1.2`;
const ROUTER_OUT_ADDR = `10.${NET}.2.1`;
const CP_ADDR = `10.${NET}.2.2`;
const CP_PORT = 18_000 + Math.floor(Math.random() * 1000);
/**
 * Host ports for the project: a range no other test uses, below Linux's ephemeral ports (an
 * outgoing socket holding the port fails `compose up`), a random 200-port slot of it per run.
 */
const PORT_BASE = 30_000 + Math.floor(Math.random() * 10) * 200;
const DOMAIN = "tunnel.test";
const ADMIN_EMAIL = "nat-admin@example.test";
const ADMIN_PASSWORD = "nat admin password 0123456789";
const RELEASE = "nat-e2e";
/** 50 MB each way, as the issue asks. */
const BIG = 50 * 1024 * 1024;
/** How long the link stays cut. */
const CUT_MS = 30_000;

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: "pipe", timeout: 20_000 }).toString();
const inNs = (ns: string, ...args: string[]) => run("ip", ["netns", "exec", ns, ...args]);
const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function buildNat(): void {
  run("ip", ["netns", "add", NS_ROUTER]);
  run("ip", ["netns", "add", NS_OUT]);
  run("ip", ["link", "add", IF_HOST, "type", "veth", "peer", "name", IF_ROUTER_IN]);
  run("ip", ["link", "add", IF_ROUTER_OUT, "type", "veth", "peer", "name", IF_OUT]);
  run("ip", ["link", "set", IF_ROUTER_IN, "netns", NS_ROUTER]);
  run("ip", ["link", "set", IF_ROUTER_OUT, "netns", NS_ROUTER]);
  run("ip", ["link", "set", IF_OUT, "netns", NS_OUT]);
  // Routes to the namespaces' subnets first, so nothing ever leaves by a default route.
  run("ip", ["addr", "add", `${HOST_ADDR}/24`, "dev", IF_HOST]);
  run("ip", ["link", "set", IF_HOST, "up"]);
  run("ip", ["route", "add", `10.${NET}.2.0/24`, "via", ROUTER_IN_ADDR, "dev", IF_HOST]);
  inNs(NS_ROUTER, "ip", "addr", "add", `${ROUTER_IN_ADDR}/24`, "dev", IF_ROUTER_IN);
  inNs(NS_ROUTER, "ip", "addr", "add", `${ROUTER_OUT_ADDR}/24`, "dev", IF_ROUTER_OUT);
  inNs(NS_ROUTER, "ip", "link", "set", IF_ROUTER_IN, "up");
  inNs(NS_ROUTER, "ip", "link", "set", IF_ROUTER_OUT, "up");
  inNs(NS_ROUTER, "ip", "link", "set", "lo", "up");
  inNs(NS_ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1");
  inNs(NS_ROUTER, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", IF_ROUTER_OUT, "-j", "MASQUERADE");
  // The NAT: replies to the host's own connections pass, nothing new comes in.
  inNs(
    NS_ROUTER,
    "iptables",
    "-A",
    "FORWARD",
    "-i",
    IF_ROUTER_OUT,
    "-m",
    "conntrack",
    "--ctstate",
    "NEW",
    "-j",
    "DROP",
  );
  inNs(NS_OUT, "ip", "addr", "add", `${CP_ADDR}/24`, "dev", IF_OUT);
  inNs(NS_OUT, "ip", "link", "set", IF_OUT, "up");
  inNs(NS_OUT, "ip", "link", "set", "lo", "up");
  // The outside knows the way to the host's subnet: only the NAT's DROP keeps it out.
  inNs(NS_OUT, "ip", "route", "add", `10.${NET}.1.0/24`, "via", ROUTER_OUT_ADDR, "dev", IF_OUT);
}

function removeNat(): string[] {
  const errors: string[] = [];
  for (const cmd of [
    ["ip", "link", "del", IF_HOST],
    ["ip", "netns", "del", NS_ROUTER],
    ["ip", "netns", "del", NS_OUT],
  ]) {
    try {
      run(cmd[0] as string, cmd.slice(1));
    } catch (err) {
      const msg = (err as { stderr?: Buffer }).stderr?.toString() ?? String(err);
      if (!/Cannot find|No such|does not exist/.test(msg)) errors.push(`${cmd.join(" ")}: ${msg}`);
    }
  }
  return errors;
}

/** Cut the link like a dead uplink: the router drops everything both ways (no RST, no FIN). */
const cutLink = () => inNs(NS_ROUTER, "iptables", "-I", "FORWARD", "1", "-j", "DROP");
const healLink = () => inNs(NS_ROUTER, "iptables", "-D", "FORWARD", "-j", "DROP");

/**
 * The `local` release plus `blob` (nat-blob.mjs, run by the node binary of the postgres-meta
 * image) behind the same gateway at /blob/ (the gateway still demands the service key). Every
 * service may use the compute size's CPUs, so that 50 MB is not throttled by a tiny `cpus` share.
 */
function writeRelease(dir: string): string {
  const images = JSON.parse(readFileSync(LOCAL_IMAGES_FILE, "utf8")) as Record<string, string>;
  const local = structuredClone(LOCAL_RELEASE) as {
    services: Record<string, { image: string; imageKey?: string; memoryShare: number; environment?: object }>;
    files?: unknown[];
  } & Record<string, unknown>;
  for (const svc of Object.values(local.services)) svc.image = images[svc.imageKey ?? ""] ?? svc.image;
  const { db, meta, gateway } = local.services as Record<"db" | "meta" | "gateway", (typeof local.services)[string]>;
  const release = {
    ...local,
    name: RELEASE,
    description: "The local release with a blob and WebSocket echo service (NAT end-to-end test)",
    cpuLimit: "size",
    services: {
      db: { ...db, memoryShare: 0.4 },
      meta: { ...meta, memoryShare: 0.3 },
      gateway: {
        ...gateway,
        memoryShare: 0.15,
        environment: { ...gateway.environment, GATEWAY_ROUTES: "/blob/=http://blob:9000" },
      },
      blob: {
        image: images["postgres-meta"],
        imageKey: "postgres-meta",
        entrypoint: ["/usr/local/bin/node", "/opt/blob/server.mjs"],
        mounts: [{ file: "blob/server.mjs", target: "/opt/blob/server.mjs" }],
        health: {
          test: [
            "CMD",
            "/usr/local/bin/node",
            "-e",
            "require('http').get('http://127.0.0.1:9000/health', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))",
          ],
          intervalSeconds: 2,
          retries: 30,
          startPeriodSeconds: 2,
        },
        required: true,
        memoryShare: 0.15,
      },
    },
    files: [
      ...(local.files ?? []),
      { path: "blob/server.mjs", template: readFileSync(join(REPO_ROOT, "test/tunnel/nat-blob.mjs"), "utf8") },
    ],
  };
  const file = join(dir, "releases.json");
  writeFileSync(file, JSON.stringify([release]));
  return file;
}

let cp: ChildProcess | null = null;
const cpOutput: string[] = [];
let agent: AgentProcess | null = null;
let token = "";
let ref = "";
let serviceKey = "";
const tmp: string[] = [];
let natBuilt = false;

function startControlPlane(dataDir: string, releasesFile: string): Promise<void> {
  const env = entryEnv({
    NODE_ENV: "production",
    HOST: CP_ADDR,
    PORT: String(CP_PORT),
    SUPAMANAGER_PUBLIC_URL: `http://${CP_ADDR}:${CP_PORT}`,
    SUPAMANAGER_JWT_SECRET: "nat-e2e-jwt-secret-0123456789abcdef01234567",
    SUPAMANAGER_ENCRYPTION_KEY: "2f".repeat(32),
    SUPAMANAGER_DATA_DIR: dataDir,
    SUPAMANAGER_ADMIN_EMAIL: ADMIN_EMAIL,
    SUPAMANAGER_ADMIN_PASSWORD: ADMIN_PASSWORD,
    SUPAMANAGER_LOCAL_IMAGES_FILE: LOCAL_IMAGES_FILE,
    SUPAMANAGER_RELEASES_FILE: releasesFile,
    SUPAMANAGER_HEARTBEAT_SECONDS: "2",
    SUPAMANAGER_HOST_OFFLINE_SECONDS: "60",
    SUPAMANAGER_PORT_RANGE: `${PORT_BASE}-${PORT_BASE + 199}`,
    SUPAMANAGER_TUNNEL_DOMAIN: DOMAIN,
    SUPAMANAGER_TUNNEL_MAX_REQUEST_BYTES: String(80 * 1024 * 1024),
  });
  const child = spawn("ip", ["netns", "exec", NS_OUT, process.execPath, ENTRY], {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  cp = child;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`control plane not ready:\n${cpOutput.join("\n")}`)), 90_000);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream as NodeJS.ReadableStream }).on("line", (line) => {
        cpOutput.push(line);
        if (/SupaManager is running at/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`control plane exited ${code}:\n${cpOutput.join("\n")}`));
    });
  });
}

interface Answer {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

/** An HTTP call to the control plane's public address, optionally by a project's tunnel name. */
function call(
  path: string,
  opts: {
    method?: string;
    json?: unknown;
    headers?: Record<string, string>;
    project?: boolean;
    timeoutMs?: number;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = opts.json === undefined ? undefined : Buffer.from(JSON.stringify(opts.json));
    const req = http.request(
      {
        host: CP_ADDR,
        port: CP_PORT,
        method: opts.method ?? (body ? "POST" : "GET"),
        path,
        agent: false,
        timeout: opts.timeoutMs ?? 60_000,
        headers: {
          ...(opts.project ? { host: `${ref}.${DOMAIN}` } : {}),
          ...(token && !opts.project ? { authorization: `Bearer ${token}` } : {}),
          ...(body ? { "content-type": "application/json", "content-length": String(body.byteLength) } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

interface OutsideAnswer {
  status: number;
  bytes: number;
  sha256: string;
  body: string;
  aborted?: boolean;
  error?: string;
  /** When the call ended, by this machine's clock. */
  endedAt: number;
  sentBytes?: number;
  sentSha256?: string;
  expectedSha256?: string;
  // WebSocket calls
  opened?: boolean;
  echoed?: number;
  mismatches?: number;
  closeCode?: number;
}

interface OutsideOptions {
  json?: unknown;
  md5Of?: number;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** POST this many bytes of nat-blob.mjs's pattern(seed). */
  upload?: { bytes: number; seed: number };
  /** The answer should be pattern(seed) of this many bytes: the client reports its checksum. */
  expectPattern?: { bytes: number; seed: number };
  /** Report when the request has been sent whole (`started` then resolves before any answer). */
  announceSent?: boolean;
  /** A WebSocket call instead: echo this many messages, then send a tick every 200 ms for holdMs. */
  ws?: { messages: number; maxBytes?: number; holdMs?: number };
}

const CLIENT = join(REPO_ROOT, "test/tunnel/nat-client.mjs");

/**
 * A call to the project by its tunnel name, made from the outside namespace (as an app on the
 * internet). `started` resolves at the client's first event (a response head, a WebSocket open).
 */
function outsideLive(
  path: string,
  opts: OutsideOptions = {},
): { started: Promise<void>; done: Promise<OutsideAnswer> } {
  const args = JSON.stringify({ host: CP_ADDR, port: CP_PORT, path, hostHeader: `${ref}.${DOMAIN}`, ...opts });
  const child = spawn("ip", ["netns", "exec", NS_OUT, process.execPath, CLIENT, args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), (opts.timeoutMs ?? 60_000) + 10_000);
  const lines: string[] = [];
  const stderr: string[] = [];
  let onStart: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    onStart = resolve;
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    onStart();
  });
  child.stderr.on("data", (c: Buffer) => stderr.push(c.toString()));
  const done = new Promise<OutsideAnswer>((resolve, reject) => {
    child.once("close", (code) => {
      clearTimeout(timer);
      onStart();
      const last = lines.at(-1);
      if (code === 0 && last) resolve(JSON.parse(last) as OutsideAnswer);
      else reject(new Error(`the outside client exited ${code}: ${stderr.join("").slice(-2000)}`));
    });
  });
  return { started, done };
}

/** A call to the project by its tunnel name from the outside namespace; its result. */
const outside = (path: string, opts: OutsideOptions = {}) => outsideLive(path, opts).done;

/** Studio's SQL path (the control plane → the agent's control channel → postgres-meta), over and over until `until` settles. */
async function studioSqlDuring(until: Promise<unknown>): Promise<{ ok: number; failed: string[] }> {
  let settled = false;
  void until.finally(() => {
    settled = true;
  });
  const result = { ok: 0, failed: [] as string[] };
  while (!settled || result.ok === 0) {
    const r = await call(`/platform/pg-meta/${ref}/query`, { json: { query: "select 41 + 1 as answer" } });
    if (r.status === 201 && JSON.stringify(JSON.parse(r.body.toString())) === '[{"answer":42}]') result.ok += 1;
    else result.failed.push(`${r.status} ${r.body.toString().slice(0, 200)}`);
    await sleep(200);
  }
  return result;
}

const json = (a: Answer) => JSON.parse(a.body.toString()) as Record<string, unknown>;

async function waitFor<T>(what: string, probe: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < until) {
    try {
      const v = await probe();
      if (v !== null) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(500);
  }
  throw new Error(
    `timed out waiting for ${what} ${last}\n--- agent ---\n${agent?.tail(30) ?? ""}\n--- control plane ---\n${cpOutput.slice(-30).join("\n")}`,
  );
}

beforeAll(async () => {
  if (!(await dockerAvailable())) throw new Error("no Docker engine answers `docker info` (bash .ci/start-docker)");
  if (!existsSync(LOCAL_IMAGES_FILE)) throw new Error(`${LOCAL_IMAGES_FILE} is missing (npm run images:test)`);
  ensureAgentBuilt();
  removeNat();
  buildNat();
  natBuilt = true;
  const cpDir = mkdtempSync(join(tmpdir(), "supamanager-nat-cp-"));
  tmp.push(cpDir);
  await startControlPlane(cpDir, writeRelease(cpDir));

  const login = await call("/auth/v1/token?grant_type=password", {
    json: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
  });
  expect(login.status, login.body.toString()).toBe(200);
  token = json(login).access_token as string;
  const org = await call("/platform/organizations", { json: { name: "NAT e2e", tier: "tier_free" } });
  expect(org.status, org.body.toString()).toBe(201);
  const join_ = await call("/platform/fleet/join-tokens", { json: { region: "nat-1" } });
  expect(join_.status).toBe(201);

  const agentDir = join(mkdtempSync(join(tmpdir(), "supamanager-nat-agent-")), "data");
  tmp.push(agentDir);
  const joined = spawnAgent([
    "join",
    ...["--url", `http://${CP_ADDR}:${CP_PORT}`, "--token", json(join_).token as string],
    ...["--data-dir", agentDir, "--name", "behind-nat", "--reachability", "tunnel"],
  ]);
  expect((await joined.exited).code, joined.output.join("\n")).toBe(0);
  agent = runAgent(agentDir, "debug");
  await waitFor(
    "the host online",
    async () => {
      const hosts = json(await call("/platform/fleet/hosts")) as unknown as { status: string }[];
      return hosts[0]?.status === "online" ? true : null;
    },
    60_000,
  );

  const created = await call("/platform/projects", {
    json: {
      name: "Behind NAT",
      organization_slug: json(org).slug,
      db_pass: "nat-db-pass-0123456789",
      db_region: "nat-1",
      release: RELEASE,
    },
  });
  expect(created.status, created.body.toString()).toBe(201);
  ref = json(created).ref as string;
  await waitFor(
    "ACTIVE_HEALTHY",
    async () => {
      const s = await call(`/platform/projects/${ref}/status`);
      return json(s).status === "ACTIVE_HEALTHY" ? true : null;
    },
    240_000,
  );
  const settings = json(await call(`/platform/projects/${ref}/settings`)) as {
    service_api_keys: { tags: string; api_key: string }[];
  };
  serviceKey = settings.service_api_keys.find((k) => k.tags === "service_role")?.api_key ?? "";
  expect(serviceKey).not.toBe("");
}, 400_000);

afterAll(async () => {
  await agent?.stop("SIGTERM", 30_000).catch(() => {});
  cp?.kill("SIGTERM");
  await sleep(500);
  if (ref) await removeProjectLeftovers(ref);
  const errors = natBuilt ? removeNat() : [];
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
  expect(errors).toEqual([]);
}, 120_000);

describe("a project on a host behind NAT, through the tunnel", () => {
  it("the host cannot be dialled from outside, and its URL is the tunnel name", async () => {
    // Something listens on the host's address; from the host it answers, from outside the NAT drops it.
    const listener = net.createServer((s) => s.end("hi"));
    await new Promise<void>((r) => listener.listen(0, HOST_ADDR, r));
    const port = (listener.address() as AddressInfo).port;
    try {
      // Asynchronously: the listener lives in this process's event loop.
      const attempt = (prefix: string[]) =>
        execFileAsync("bash", [
          "-c",
          `${prefix.join(" ")} timeout 3 bash -c 'exec 3<>/dev/tcp/${HOST_ADDR}/${port}; head -c 2 <&3'`,
        ])
          .then((r) => r.stdout)
          .catch(() => "refused or dropped");
      expect(await attempt([])).toBe("hi");
      expect(await attempt(["ip", "netns", "exec", NS_OUT])).toBe("refused or dropped");
    } finally {
      listener.close();
    }
    const detail = json(await call(`/platform/projects/${ref}`));
    expect(detail.restUrl).toBe(`https://${ref}.${DOMAIN}/rest/v1/`);
    const hosts = json(await call("/platform/fleet/hosts")) as unknown as {
      reachability: string;
      projects: { url: string }[];
    }[];
    expect(hosts[0]).toMatchObject({ reachability: "tunnel", projects: [{ url: `https://${ref}.${DOMAIN}` }] });
  });

  it("REST-style requests reach the project's real gateway, which still checks keys", async () => {
    const health = await outside("/health");
    expect(health.status).toBe(200);
    expect(health.body).toBe("ok");
    const noKey = await outside("/pg/tables");
    expect(noKey.status).toBe(401);
    const tables = await outside("/pg/tables?included_schemas=public", { headers: { apikey: serviceKey } });
    expect(tables.status, tables.body).toBe(200);
    expect(Array.isArray(JSON.parse(tables.body))).toBe(true);
  });

  it("carries 50 MB up and 50 MB down intact and echoes a WebSocket, while Studio's SQL path keeps working", async () => {
    const key = { apikey: serviceKey };
    const transfers = Promise.all([
      outside("/blob/upload", { upload: { bytes: BIG, seed: 11 }, headers: key, timeoutMs: 120_000 }),
      outside(`/blob/download?bytes=${BIG}&seed=12`, {
        expectPattern: { bytes: BIG, seed: 12 },
        headers: key,
        timeoutMs: 120_000,
      }),
      outside("/blob/ws", { ws: { messages: 50, maxBytes: 256 * 1024 }, headers: key }),
    ]);
    const studio = studioSqlDuring(transfers);
    const [up, down, ws] = await transfers;
    // The upload: what the client sent is what the project's service read, checksummed at both ends.
    expect(up.status, up.body).toBe(200);
    expect(up.sentBytes).toBe(BIG);
    expect(JSON.parse(up.body)).toEqual({ bytes: BIG, sha256: up.sentSha256 });
    // The download: every byte the service generated arrived, in order.
    expect(down.status).toBe(200);
    expect(down.aborted).toBe(false);
    expect(down.bytes).toBe(BIG);
    expect(down.sha256).toBe(down.expectedSha256);
    // The WebSocket: 50 binary messages up to 256 KiB each came back, in order and intact.
    expect(ws).toMatchObject({ opened: true, echoed: 50, mismatches: 0, closeCode: 1000 });
    const sql = await studio;
    expect(sql.failed).toEqual([]);
    expect(sql.ok).toBeGreaterThan(0);
  }, 240_000);

  it("carries a 1 MiB SQL answer intact and a 64 KiB SQL request body through postgres-meta", async () => {
    const size = 1024 * 1024;
    const sql = `select repeat('x', ${size}) as big`;
    const big = await outside("/pg/query", { json: { query: sql }, headers: { apikey: serviceKey } });
    expect(big.status, big.body.slice(0, 300)).toBe(200);
    // postgres-meta answers [{"big":"xxx…"}]: the exact bytes are known, so is their checksum.
    const expected = Buffer.from(JSON.stringify([{ big: "x".repeat(size) }]));
    expect(big.bytes).toBe(expected.byteLength);
    expect(big.sha256).toBe(createHash("sha256").update(expected).digest("hex"));
    // A large request body: postgres-meta hashes what arrived.
    const n = 64 * 1024;
    const up = await outside("/pg/query", { md5Of: n, headers: { apikey: serviceKey } });
    expect(up.status, up.body).toBe(200);
    expect(JSON.parse(up.body)).toEqual([{ sum: createHash("md5").update("y".repeat(n)).digest("hex") }]);
  }, 120_000);

  it("a link cut for 30 s fails in-flight calls quickly with a clear 502/503, and new ones succeed after it heals", async () => {
    const key = { apikey: serviceKey };
    // In flight when the link goes: a request still waiting for its answer, a download streaming
    // (its head already sent, so it can only be cut short), and an open WebSocket.
    const waiting = outsideLive("/blob/slow?ms=50000", { headers: key, timeoutMs: 90_000, announceSent: true });
    const dripping = outsideLive(`/blob/download?bytes=${BIG}&seed=13&delayMs=100`, {
      headers: key,
      timeoutMs: 90_000,
    });
    const socket = outsideLive("/blob/ws", { ws: { messages: 1, holdMs: 80_000 }, headers: key, timeoutMs: 90_000 });
    await Promise.all([waiting.started, dripping.started, socket.started]);
    // The slow request was sent whole: give the relay and the agent a moment to pass it on.
    await sleep(1_000);
    const cutAt = Date.now();
    cutLink();
    let healAt = 0;
    try {
      const [w, d, s] = await Promise.all([waiting.done, dripping.done, socket.done]);
      // The relay notices the silent data connection by its missed pings (two 5 s intervals at
      // most) and fails what it carried: well before the link comes back, not at a client timeout.
      expect(w.status, w.body).toBe(502);
      expect(JSON.parse(w.body)).toMatchObject({ code: "bad_gateway" });
      expect(JSON.parse(w.body).message).toMatch(/could not be reached through the tunnel/);
      expect(d.status).toBe(200);
      expect(d.aborted).toBe(true);
      expect(d.bytes).toBeLessThan(BIG);
      expect(s).toMatchObject({ opened: true, echoed: 1 });
      expect(s.closeCode).not.toBe(1000);
      for (const [what, a] of [
        ["the waiting request", w],
        ["the streaming download", d],
        ["the WebSocket", s],
      ] as const) {
        console.info(`${what} ended ${a.endedAt - cutAt} ms after the cut`);
        expect(a.endedAt - cutAt, `${what} ended ${a.endedAt - cutAt} ms after the cut`).toBeLessThan(CUT_MS / 2);
      }
      // While the link is down a new call is told so at once (no tunnel to open a stream on).
      const t0 = Date.now();
      const during = await outside("/blob/health", { headers: key });
      expect(during.status).toBe(503);
      expect(JSON.parse(during.body).message).toMatch(/no tunnel connection/);
      expect(during.endedAt - t0).toBeLessThan(CUT_MS / 10);
    } finally {
      await sleep(Math.max(0, CUT_MS - (Date.now() - cutAt)));
      healLink();
      healAt = Date.now();
    }
    // The agent redials on its own; new calls go through again, bodies intact.
    await waitFor(
      "a request through the healed tunnel",
      async () => ((await outside("/blob/health", { headers: key, timeoutMs: 5_000 })).status === 200 ? true : null),
      90_000,
    );
    const recoveredMs = Date.now() - healAt;
    console.info(`the tunnel carried requests again ${recoveredMs} ms after the link healed`);
    const down = await outside(`/blob/download?bytes=${4 * 1024 * 1024}&seed=14`, {
      expectPattern: { bytes: 4 * 1024 * 1024, seed: 14 },
      headers: key,
    });
    expect(down).toMatchObject({ status: 200, bytes: 4 * 1024 * 1024, aborted: false });
    expect(down.sha256).toBe(down.expectedSha256);
    expect(await outside("/blob/ws", { ws: { messages: 5 }, headers: key })).toMatchObject({
      echoed: 5,
      mismatches: 0,
      closeCode: 1000,
    });
    // Studio's SQL path (the control channel, which the cut dropped too) and postgres-meta behind
    // the tunnel work again.
    await waitFor(
      "SQL through the healed tunnel",
      async () => ((await outside("/pg/tables", { headers: key })).status === 200 ? true : null),
      60_000,
    );
    await waitFor(
      "Studio's SQL path after the cut",
      async () =>
        (await call(`/platform/pg-meta/${ref}/query`, { json: { query: "select 1" } })).status === 201 ? true : null,
      60_000,
    );
  }, 240_000);
});
