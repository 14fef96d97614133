import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, ensureAgentBuilt, runAgent, spawnAgent } from "../support/agent-process.js";
import { dockerAvailable, removeProjectLeftovers } from "../support/docker.js";
import { ENTRY, entryEnv, REPO_ROOT } from "../support/process.js";

/**
 * A host behind NAT, end to end on the real Docker engine (issue 15, ADR 0035). The Docker host
 * (this machine's own namespace, where the agent and the project's containers run) reaches "the
 * internet" only through a router namespace that masquerades its traffic and drops every NEW
 * connection coming back in; the control plane runs out there, in its own namespace, on PGlite.
 * Apps call the project by its tunnel name at the control plane; the agent's outbound tunnel
 * carries the traffic to the project's real gateway (the `local` release).
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
const DOMAIN = "tunnel.test";
const ADMIN_EMAIL = "nat-admin@example.test";
const ADMIN_PASSWORD = "nat admin password 0123456789";

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

let cp: ChildProcess | null = null;
const cpOutput: string[] = [];
let agent: AgentProcess | null = null;
let token = "";
let ref = "";
let serviceKey = "";
const tmp: string[] = [];
let natBuilt = false;

function startControlPlane(dataDir: string): Promise<void> {
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
    SUPAMANAGER_HEARTBEAT_SECONDS: "2",
    SUPAMANAGER_HOST_OFFLINE_SECONDS: "60",
    SUPAMANAGER_PORT_RANGE: "47000-47999",
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
}

const CLIENT = join(REPO_ROOT, "test/tunnel/nat-client.mjs");

/** A request to the project by its tunnel name, made from the outside namespace (as an app on the internet). */
async function outside(
  path: string,
  opts: { json?: unknown; md5Of?: number; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<OutsideAnswer> {
  const args = JSON.stringify({ host: CP_ADDR, port: CP_PORT, path, hostHeader: `${ref}.${DOMAIN}`, ...opts });
  const r = await execFileAsync("ip", ["netns", "exec", NS_OUT, process.execPath, CLIENT, args], {
    timeout: (opts.timeoutMs ?? 60_000) + 10_000,
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(r.stdout) as OutsideAnswer;
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
  await startControlPlane(cpDir);

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

  // The `local` release's only service behind its gateway is postgres-meta, which answers at most a
  // few MB (4 MB sometimes, 400 for an 8 MB value, a dropped connection at 20 MB, measured straight at
  // the gateway)
  // and its gateway answers 502 to a query carrying a 900 KB literal. So this sends what it can; 50 MB both ways through the same
  // relay and agent code, checksummed, is test/tunnel/relay.test.ts.
  it("carries a 1 MiB answer intact and a 64 KiB request body, while Studio's SQL path keeps working", async () => {
    const size = 1024 * 1024;
    const sql = `select repeat('x', ${size}) as big`;
    const studio = call(`/platform/pg-meta/${ref}/query`, { json: { query: "select 41 + 1 as answer" } });
    const big = await outside("/pg/query", { json: { query: sql }, headers: { apikey: serviceKey } });
    expect(big.status, big.body.slice(0, 300)).toBe(200);
    // postgres-meta answers [{"big":"xxx…"}]: the exact bytes are known, so is their checksum.
    const expected = Buffer.from(JSON.stringify([{ big: "x".repeat(size) }]));
    expect(big.bytes).toBe(expected.byteLength);
    expect(big.sha256).toBe(createHash("sha256").update(expected).digest("hex"));
    const answer = await studio;
    expect(answer.status, answer.body.toString()).toBe(201);
    expect(JSON.parse(answer.body.toString())).toEqual([{ answer: 42 }]);
    // A large request body: postgres-meta hashes what arrived.
    const n = 64 * 1024;
    const up = await outside("/pg/query", { md5Of: n, headers: { apikey: serviceKey } });
    expect(up.status, up.body).toBe(200);
    expect(JSON.parse(up.body)).toEqual([{ sum: createHash("md5").update("y".repeat(n)).digest("hex") }]);
  }, 120_000);

  it("a cut link fails in-flight requests quickly, and new ones succeed after it heals", async () => {
    const inflight = outside("/pg/query", { json: { query: "select pg_sleep(12)" }, headers: { apikey: serviceKey } });
    await sleep(500);
    const cutAt = Date.now();
    cutLink();
    try {
      const failed = await inflight;
      const after = Date.now() - cutAt;
      expect([502, 503]).toContain(failed.status);
      expect(after).toBeLessThan(15_000);
      const during = await outside("/health");
      expect(during.status).toBe(503);
      expect(JSON.parse(during.body).message).toMatch(/no tunnel connection/);
    } finally {
      await sleep(Math.max(0, 15_000 - (Date.now() - cutAt)));
      healLink();
    }
    await waitFor(
      "a request through the healed tunnel",
      async () => ((await outside("/health", { timeoutMs: 5_000 })).status === 200 ? true : null),
      90_000,
    );
    // postgres-meta itself may take a moment: the in-flight query's client went away mid-query.
    await waitFor(
      "SQL through the healed tunnel",
      async () => ((await outside("/pg/tables", { headers: { apikey: serviceKey } })).status === 200 ? true : null),
      60_000,
    );
  }, 150_000);
});
