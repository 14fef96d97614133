/**
 * The tunnel (ADR 0035) against a direct call to the same gateway, on loopback, in one run,
 * interleaved: latency of a small request (p50/p99), throughput of a large download and upload
 * (also through a plain Node reverse proxy in the control-plane process, for reference),
 * 100 concurrent streams, and how late a control-channel ping to the control plane comes back
 * while a large transfer runs through the tunnel.
 *
 * Three processes, as in production: this one is the client; a child is the control plane (its
 * TunnelRelay on a Node HTTP server, the `ws` server the agent's data connection lands on, and a
 * WebSocket server standing in for the agents' control channel); another child is the host (the
 * agent's TunnelClient and a Node HTTP server standing in for the project's gateway). Direct:
 * client → gateway. Tunnel: client → control plane → agent → gateway. The relay's project lookup
 * is a constant (the database lookup is cached per ref anyway).
 *
 * Usage: npm run bench:tunnel [-- --requests 2000 --block 100 --mib 100 --rounds 3 --mask zero --cpu-prof DIR]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http, { type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import WebSocket, { WebSocketServer } from "ws";
import { buildConfig, parseEnv } from "../control-plane/src/config.js";
import type { AppDeps } from "../control-plane/src/deps.js";
import { TunnelRelay } from "../control-plane/src/entry/tunnel.js";
import { createLogger as createCpLogger } from "../control-plane/src/logger.js";
import { createLogger } from "../host-agent/src/log.js";
import { TunnelClient } from "../host-agent/src/tunnel/client.js";
import { REPO_ROOT } from "../test/support/process.js";
import { machineLine, percentile } from "./support.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "2000" },
    block: { type: "string", default: "100" },
    mib: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
    /** Per-stream credit in KiB (default: the protocol's 512). */
    window: { type: "string", default: "512" },
    /** `random`: the agent masks its frames as over plain ws://; `zero`: as over wss:// (ADR 0035). */
    mask: { type: "string", default: "random" },
    /** Write CPU profiles of the control plane and host children into this directory (`node --cpu-prof`). */
    "cpu-prof": { type: "string" },
    /** Internal: run as the `cp` or `host` child. */
    role: { type: "string", default: "client" },
    /** Internal (host child): the control plane's data-connection port. */
    wss: { type: "string", default: "0" },
  },
});
const requests = Number(values.requests);
const block = Number(values.block);
const mib = Number(values.mib);
const rounds = Number(values.rounds);
const window = Number(values.window) * 1024;
const REF = "benchbenchbenchbench";
const HOST_ID = "host_benchbenchbenchbenc";

function startGateway(): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://gw");
    if (url.pathname === "/small") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      return;
    }
    if (url.pathname === "/download") {
      const n = Number(url.searchParams.get("bytes"));
      const piece = Buffer.alloc(256 * 1024, 120);
      res.writeHead(200, { "content-length": String(n) });
      let sent = 0;
      const write = () => {
        while (sent < n) {
          const c = piece.subarray(0, Math.min(piece.byteLength, n - sent));
          sent += c.byteLength;
          if (!res.write(c)) return void res.once("drain", write);
        }
        res.end();
      };
      write();
      return;
    }
    if (url.pathname === "/upload") {
      let n = 0;
      req.on("data", (c: Buffer) => {
        n += c.byteLength;
      });
      req.on("end", () => res.writeHead(200).end(String(n)));
      return;
    }
    res.writeHead(404).end();
  });
}

const listen = (s: http.Server | WebSocketServer) =>
  new Promise<number>((resolve) => {
    if (s instanceof WebSocketServer) s.on("listening", () => resolve((s.address() as AddressInfo).port));
    else s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port));
  });

/** One line of JSON on stdout: how the parent finds a child's ports. */
const announce = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

/** The control plane child: the relay, the agents' data-connection server, a control-channel stand-in. */
async function controlPlane() {
  const config = buildConfig(
    parseEnv({ SUPAMANAGER_TUNNEL_DOMAIN: "tunnel.bench", SUPAMANAGER_TUNNEL_MAX_REQUEST_BYTES: String(2 ** 30) }),
    { jwtSecret: "x".repeat(32), encryptionKey: "00".repeat(32) },
  );
  const deps = { config, logger: createCpLogger("error") } as unknown as AppDeps;
  const relay = new TunnelRelay(deps, { window, lookup: async () => ({ hostId: HOST_ID, tunnelMode: true }) });
  const cp = http.createServer((req, res) => void relay.handleRequest(req, res, REF));
  // Keep-alive sockets idle during the long transfers must not be closed under the client.
  cp.keepAliveTimeout = 120_000;
  const cpPort = await listen(cp);
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  wss.on("connection", (ws) => relay.attach(HOST_ID, ws));
  const wssPort = await listen(wss);
  // The agents' control channel lives in the same process as the relay: its pings show how long
  // a control frame waits while the process moves tunnel bytes.
  const ctlServer = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  const ctlPort = await listen(ctlServer);
  // A plain reverse proxy in the same process, for reference: what one more user-space hop costs
  // without the tunnel (client → this process → gateway, one TCP connection per hop, piped).
  const upstream = new http.Agent({ keepAlive: true, maxSockets: 200 });
  const proxy = http.createServer((req, res) => {
    const up = http.request(
      {
        host: "127.0.0.1",
        port: Number(req.headers["x-bench-gateway-port"]),
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: upstream,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  proxy.keepAliveTimeout = 120_000;
  const proxyPort = await listen(proxy);
  announce({ cpPort, wssPort, ctlPort, proxyPort });
}

/** The host child: the project's gateway and the agent's tunnel client. */
async function hostSide() {
  const gateway = startGateway();
  gateway.keepAliveTimeout = 120_000;
  const gatewayPort = await listen(gateway);
  const agent = new TunnelClient({
    url: `http://127.0.0.1:${values.wss}`,
    credential: "bench",
    logger: createLogger({ level: "error" }),
    gateway: async () => `http://127.0.0.1:${gatewayPort}`,
    window,
    zeroMask: values.mask === "zero",
  });
  agent.start();
  announce({ gatewayPort });
}

const children: ChildProcess[] = [];

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time (user + system, ms) process `pid` has used so far, from /proc (Linux; null elsewhere).
 * Unlike throughput it hardly moves with what else the machine runs, so it shows the tunnel's own
 * cost per byte on a shared machine.
 */
function cpuMs(pid: number | undefined): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After "pid (comm) ": field 3 (state) is index 0, utime (14) index 11, stime (15) index 12.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Start this script as `role` and read its announcement. */
async function child<T>(role: string, extra: string[] = []): Promise<T> {
  // One directory per child: the tsx loader's worker thread writes a profile of its own.
  const prof = values["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", join(values["cpu-prof"], role)] : [];
  const args = [
    ...prof,
    "--import",
    "tsx",
    fileURLToPath(import.meta.url),
    "--role",
    role,
    "--window",
    String(window / 1024),
  ];
  args.push("--mask", String(values.mask), ...extra);
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(proc);
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  return new Promise<T>((resolve, reject) => {
    lines.once("line", (line) => resolve(JSON.parse(line) as T));
    proc.once("exit", (code) => reject(new Error(`the ${role} child exited (${code})`)));
  });
}

async function main() {
  const { cpPort, ctlPort, wssPort, proxyPort } = await child<{
    cpPort: number;
    wssPort: number;
    ctlPort: number;
    proxyPort: number;
  }>("cp");
  const { gatewayPort } = await child<{ gatewayPort: number }>("host", ["--wss", String(wssPort)]);
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 200 });
  const targets = { direct: gatewayPort, tunnel: cpPort, proxy: proxyPort } as const;
  type Path = keyof typeof targets;
  const get = (path: Path, url: string, body?: Buffer) =>
    new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port: targets[path],
          path: url,
          method: body ? "POST" : "GET",
          agent: keepAlive,
          headers: {
            host: `${REF}.tunnel.bench`,
            "x-bench-gateway-port": String(gatewayPort),
            ...(body ? { "content-length": String(body.byteLength) } : {}),
          },
        },
        (res: IncomingMessage) => {
          let bytes = 0;
          res.on("data", (c: Buffer) => {
            bytes += c.byteLength;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
        },
      );
      req.on("error", reject);
      if (body) {
        // A large body in 1 MiB writes, honouring back-pressure.
        let off = 0;
        const write = () => {
          while (off < body.byteLength) {
            const c = body.subarray(off, off + 2 ** 20);
            off += c.byteLength;
            if (!req.write(c)) return void req.once("drain", write);
          }
          req.end();
        };
        write();
      } else req.end();
    });

  // The agent's data connection is up once a request through the tunnel answers 200.
  for (let i = 0; ; i++) {
    const ok = await get("tunnel", "/small").then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (i > 200) throw new Error("the tunnel did not come up");
    await new Promise((r) => setTimeout(r, 50));
  }
  // Warm up both paths.
  for (let i = 0; i < 200; i++) for (const p of ["direct", "tunnel"] as const) await get(p, "/small");

  // 1. Small-request latency, interleaved in blocks.
  const lat: Record<"direct" | "tunnel", number[]> = { direct: [], tunnel: [] };
  for (let done = 0; done < requests; done += block) {
    for (const p of ["direct", "tunnel"] as const) {
      for (let i = 0; i < block; i++) {
        const t0 = process.hrtime.bigint();
        const r = await get(p, "/small");
        if (r.status !== 200) throw new Error(`${p} /small: ${r.status}`);
        lat[p].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { p50: percentile(s, 50), p99: percentile(s, 99) };
  };

  // 2. Throughput, interleaved rounds; 3. 100 concurrent small streams; 4. control ping while a transfer runs.
  const bytes = mib * 2 ** 20;
  const upload = Buffer.alloc(bytes, 121);
  const thr: Record<string, number[]> = {};
  // CPU ms the control plane and host children spent on the large transfers, per path.
  const cpu = { tunnel: { cp: 0, host: 0 }, direct: { cp: 0, host: 0 }, proxy: { cp: 0, host: 0 } };
  const [cpPid, hostPid] = children.map((c) => c.pid);
  const cpuNow = () => ({ cp: cpuMs(cpPid) ?? Number.NaN, host: cpuMs(hostPid) ?? Number.NaN });
  const addCpu = (p: Path, from: { cp: number; host: number }) => {
    const to = cpuNow();
    cpu[p].cp += to.cp - from.cp;
    cpu[p].host += to.host - from.host;
  };
  const conc: Record<"direct" | "tunnel", number[]> = { direct: [], tunnel: [] };
  const push = (key: string, x: number) => {
    thr[key] = [...(thr[key] ?? []), x];
  };
  for (let r = 0; r < rounds; r++) {
    for (const p of ["direct", "proxy", "tunnel"] as const) {
      let t0 = performance.now();
      let c0 = cpuNow();
      const d = await get(p, `/download?bytes=${bytes}`);
      if (d.bytes !== bytes) throw new Error(`${p} download got ${d.bytes}`);
      push(`down-${p}`, mib / ((performance.now() - t0) / 1000));
      addCpu(p, c0);
      t0 = performance.now();
      c0 = cpuNow();
      const u = await get(p, "/upload", upload);
      if (u.status !== 200) throw new Error(`${p} upload: ${u.status}`);
      push(`up-${p}`, mib / ((performance.now() - t0) / 1000));
      addCpu(p, c0);
      if (p === "proxy") continue;
      t0 = performance.now();
      const all = await Promise.all(Array.from({ length: 100 }, () => get(p, "/small")));
      if (all.some((x) => x.status !== 200)) throw new Error(`${p}: a concurrent request failed`);
      conc[p].push(performance.now() - t0);
    }
  }
  // A control-channel stand-in: a WebSocket ping round trip to the same control plane process while
  // a large download runs through the tunnel (the agent's control frames ride their own socket).
  const ctl = new WebSocket(`ws://127.0.0.1:${ctlPort}`);
  await new Promise((r) => ctl.once("open", r));
  const pingRtt = async () => {
    const t0 = performance.now();
    await new Promise((r) => {
      ctl.once("pong", r);
      ctl.ping();
    });
    return performance.now() - t0;
  };
  const idlePings: number[] = [];
  for (let i = 0; i < 20; i++) idlePings.push(await pingRtt());
  const busyPings: number[] = [];
  let transferring = true;
  const transfer = get("tunnel", `/download?bytes=${bytes * 2}`).finally(() => {
    transferring = false;
  });
  while (transferring) {
    busyPings.push(await pingRtt());
    await new Promise((r) => setTimeout(r, 20));
  }
  await transfer;
  ctl.close();

  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const direct = stats(lat.direct);
  const tunnel = stats(lat.tunnel);
  const result = {
    machine: machineLine(),
    processes: "client, control plane, host (agent + gateway)",
    requests,
    mib,
    rounds,
    windowKiB: window / 1024,
    mask: values.mask,
    smallRequestMs: { direct, tunnel, p50Ratio: tunnel.p50 / direct.p50, p50ExtraMs: tunnel.p50 - direct.p50 },
    throughputMiBps: {
      download: {
        direct: med(thr["down-direct"] ?? []),
        tunnel: med(thr["down-tunnel"] ?? []),
        plainProxy: med(thr["down-proxy"] ?? []),
      },
      upload: {
        direct: med(thr["up-direct"] ?? []),
        tunnel: med(thr["up-tunnel"] ?? []),
        plainProxy: med(thr["up-proxy"] ?? []),
      },
    },
    concurrent100Ms: { direct: med(conc.direct), tunnel: med(conc.tunnel) },
    /** CPU per MiB moved by the large transfers (down and up alike), per child process. */
    cpuMsPerMiB: Object.fromEntries(
      (["direct", "plainProxy", "tunnel"] as const).map((k) => {
        const c = cpu[k === "plainProxy" ? "proxy" : k];
        return [k, { controlPlane: c.cp / (2 * rounds * mib), host: c.host / (2 * rounds * mib) }];
      }),
    ),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    controlPingMs: {
      idleP50: stats(idlePings).p50,
      duringTransferP50: stats(busyPings).p50,
      duringTransferMax: Math.max(...busyPings),
      samples: busyPings.length,
    },
  };
  mkdirSync(join(REPO_ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(REPO_ROOT, `bench/results/tunnel-${values.mask}-mask.json`),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  keepAlive.destroy();
  // SIGINT lets a profiled child write its profile on the way out (see the children's handler).
  await Promise.all(
    children.map(
      (c) =>
        new Promise((resolve) => {
          if (c.exitCode !== null) return resolve(null);
          c.once("exit", resolve);
          c.kill("SIGINT");
        }),
    ),
  );
  process.exit(0);
}

// A child exits on SIGINT through process.exit, so that `--cpu-prof` writes its profile.
if (values.role !== "client") process.once("SIGINT", () => process.exit(0));
const run = values.role === "cp" ? controlPlane : values.role === "host" ? hostSide : main;
run().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  for (const c of children) c.kill();
  process.exit(1);
});
