import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PROTOCOL_VERSION, type Rpc } from "@supamanager/shared";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { REF_A, REF_B } from "../test-support/frames.js";
import { type ProjectEndpoints, RpcForwarder } from "./forwarder.js";

/** A stand-in service on loopback: records requests and answers as each test says. */
let server: Server;
let base: string;
let seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[];
let handler: (req: IncomingMessage, res: ServerResponse, body: string) => void;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen = [];
  handler = (_req, res) => {
    res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify([{ ok: true }]));
  };
});

const SECRET_HEADER = "U2FsdGVkX1-very-secret-connection";
const SECRET_SQL = "select 'row secret 8c1f'";

function rpc(overrides: Partial<Rpc> = {}): Rpc {
  return {
    v: PROTOCOL_VERSION,
    type: "rpc",
    id: "rpc_1",
    ref: REF_A,
    service: "meta",
    method: "POST",
    path: "/query?statementTimeoutSecs=5",
    headers: { "x-connection-encrypted": SECRET_HEADER },
    body: { query: SECRET_SQL },
    timeoutMs: 2_000,
    ...overrides,
  };
}

function forwarder(
  opts: { projects?: Record<string, ProjectEndpoints>; maxResultBytes?: number; bindAddress?: string | null } = {},
) {
  const logger = memoryLogger();
  const projects = opts.projects ?? { [REF_A]: { desiredState: "running", endpoints: { meta: base } } };
  const f = new RpcForwarder({
    logger,
    bindAddress: opts.bindAddress === undefined ? "127.0.0.1" : opts.bindAddress,
    ...(opts.maxResultBytes !== undefined ? { maxResultBytes: opts.maxResultBytes } : {}),
    project: async (ref) => projects[ref] ?? null,
  });
  return { f, logger };
}

describe("RpcForwarder", () => {
  it("forwards method, path, headers and body to the service's endpoint and answers its status and JSON", async () => {
    const { f, logger } = forwarder();
    const r = await f.handle(rpc());
    expect(r).toEqual({
      v: PROTOCOL_VERSION,
      type: "rpc_result",
      id: "rpc_1",
      status: 200,
      contentType: "application/json; charset=utf-8",
      body: [{ ok: true }],
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: "POST", url: "/query?statementTimeoutSecs=5" });
    expect(seen[0]?.headers["x-connection-encrypted"]).toBe(SECRET_HEADER);
    expect(seen[0]?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(seen[0]?.body ?? "")).toEqual({ query: SECRET_SQL });
    // Neither headers nor bodies are ever logged.
    const log = logger.lines.join("\n");
    expect(log).not.toContain(SECRET_HEADER);
    expect(log).not.toContain("row secret");
    expect(f.active).toBe(0);
  });

  it("resultEncoding base64: the upstream bytes as they were, whatever the type; bounded so the frame fits", async () => {
    const bytes = Buffer.from([0, 255, 1, 254, 0xc3, 0x28, 10, 13]);
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "image/png" });
      res.end(bytes);
    };
    const { f } = forwarder();
    const r = await f.handle(rpc({ method: "GET", body: undefined, resultEncoding: "base64" }));
    expect(r).toMatchObject({ status: 200, bodyEncoding: "base64", contentType: "image/png" });
    expect(Buffer.from(r.body as string, "base64").equals(bytes)).toBe(true);
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(Buffer.alloc(7000, 1));
    };
    // 7000 bytes fit a 8192-byte body limit as they are, not once base64 grows them by 4/3.
    const small = forwarder({ maxResultBytes: 8192 }).f;
    expect((await small.handle(rpc({ method: "GET", body: undefined }))).status).toBe(200);
    expect((await small.handle(rpc({ method: "GET", body: undefined, resultEncoding: "base64" }))).code).toBe(
      "too_large",
    );
  });

  it("keeps an endpoint's base path and passes non-2xx answers through", async () => {
    handler = (_req, res) => {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ message: "syntax error", formattedError: "ERROR: 42601" }));
    };
    const { f } = forwarder({
      projects: { [REF_A]: { desiredState: "running", endpoints: { gateway: `${base}/pg/` } } },
    });
    const r = await f.handle(rpc({ service: "gateway", method: "GET", path: "/tables?limit=1", body: undefined }));
    expect(r).toMatchObject({ status: 400, body: { message: "syntax error", formattedError: "ERROR: 42601" } });
    expect(seen[0]).toMatchObject({ method: "GET", url: "/pg/tables?limit=1", body: "" });
  });

  it("answers text bodies as text and HEAD without a body", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    };
    const { f } = forwarder();
    expect(await f.handle(rpc({ method: "GET", path: "/health", body: undefined }))).toMatchObject({
      status: 200,
      body: "ok",
    });
    const head = await f.handle(rpc({ method: "HEAD", path: "/health" }));
    expect(head.status).toBe(200);
    expect(head.body).toBeUndefined();
    expect(seen.at(-1)?.body).toBe("");
  });

  const refusals: [string, Partial<Rpc>, Record<string, ProjectEndpoints> | undefined, RegExp][] = [
    ["a project this host does not run", { ref: REF_B }, undefined, /does not run project/],
    [
      "a paused project",
      {},
      { [REF_A]: { desiredState: "paused", endpoints: { meta: "http://127.0.0.1:1" } } },
      /is paused, not running/,
    ],
    ["a service without an endpoint", { service: "db" }, undefined, /no endpoint for service "db"/],
    [
      "an endpoint off the bind address",
      {},
      { [REF_A]: { desiredState: "running", endpoints: { meta: "http://10.1.2.3:8080" } } },
      /not on this host's bind address/,
    ],
    ["a path that would leave the endpoint", { path: "//evil.example/x" }, undefined, /invalid request path/],
    ["a path with a backslash", { path: "/\\evil" }, undefined, /invalid request path/],
  ];
  it.each(refusals)("refuses %s without a request", async (_name, over, projects, error) => {
    const { f } = forwarder(projects ? { projects } : {});
    const r = await f.handle(rpc(over));
    expect(r).toMatchObject({ id: "rpc_1", code: "refused", error: expect.stringMatching(error) });
    expect(r.status).toBeUndefined();
    expect(seen).toHaveLength(0);
  });

  it("enforces the timeout", async () => {
    handler = (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("[]");
      }, 1_000);
    };
    const { f } = forwarder();
    const started = Date.now();
    const r = await f.handle(rpc({ timeoutMs: 100 }));
    expect(r).toMatchObject({ code: "timeout", error: 'service "meta" did not answer within 100 ms' });
    expect(Date.now() - started).toBeLessThan(900);
  });

  it.each([
    ["with a content-length", true],
    ["chunked", false],
  ])("a result over the limit (%s) becomes a clear error, never a huge frame", async (_name, withLength) => {
    const payload = JSON.stringify([{ big: "x".repeat(5000) }]);
    handler = (_req, res) => {
      res.writeHead(200, {
        "content-type": "application/json",
        ...(withLength ? { "content-length": Buffer.byteLength(payload) } : {}),
      });
      if (withLength) res.end(payload);
      else {
        res.write(payload.slice(0, 2000));
        res.end(payload.slice(2000));
      }
    };
    const { f } = forwarder({ maxResultBytes: 1000 });
    const r = await f.handle(rpc());
    expect(r).toMatchObject({
      code: "too_large",
      error: `result too large (${Buffer.byteLength(payload)} bytes, the limit is 1000); add a LIMIT`,
    });
    expect(r.body).toBeUndefined();
  });

  it("honours the control plane's maxResultBytes (API Gateway's 128 KiB messages) for the whole frame", async () => {
    const body = JSON.stringify([{ big: "x".repeat(20_000) }]);
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    };
    const { f } = forwarder();
    // Under the limit: answered in full.
    const fits = await f.handle(rpc({ maxResultBytes: 64 * 1024 }));
    expect(fits.status).toBe(200);
    expect(Buffer.byteLength(JSON.stringify(fits))).toBeLessThanOrEqual(64 * 1024);
    // The body alone is over what the control plane can take: refused before the frame is built.
    const tooBig = await f.handle(rpc({ maxResultBytes: 16 * 1024 }));
    expect(tooBig).toMatchObject({ code: "too_large" });
    expect(tooBig.error).toMatch(/the limit is 15360\); add a LIMIT/);
    // Escaping grows the frame past the limit although the body fits: the frame check catches it.
    const quotes = '"'.repeat(12_000);
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(quotes);
    };
    const escaped = await f.handle(rpc({ maxResultBytes: 16 * 1024 }));
    expect(escaped.code).toBe("too_large");
    expect(escaped.error).toMatch(/bytes as a frame, the limit is 16384\)/);
  });

  it("an unreachable service is answered as such", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { f } = forwarder({
      projects: { [REF_A]: { desiredState: "running", endpoints: { meta: `http://127.0.0.1:${port}` } } },
    });
    const r = await f.handle(rpc());
    expect(r).toMatchObject({ code: "unreachable", error: expect.stringMatching(/unreachable.*ECONNREFUSED/) });
  });

  it("hop-by-hop headers are not forwarded", async () => {
    const { f } = forwarder();
    await f.handle(rpc({ headers: { host: "evil.example", connection: "close", "x-pg-application-name": "sm" } }));
    expect(seen[0]?.headers.host).toBe(base.replace("http://", ""));
    expect(seen[0]?.headers["x-pg-application-name"]).toBe("sm");
  });
});
