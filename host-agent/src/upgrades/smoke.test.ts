import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiSmoke } from "./smoke.js";

/**
 * The upgrade's API check against a stand-in gateway on loopback that answers as Kong in front of
 * GoTrue, PostgREST, Storage and postgres-meta does: key-auth on every route (401 without
 * `apikey`), service_role only on /pg/. The real services are checked end to end only where a
 * release runs them; the `local` release's real gateway and postgres-meta are in
 * test/upgrades/upgrades.test.ts.
 */
const ANON = "anon-key-value";
const SERVICE = "service-key-value";
let server: Server;
let base = "";
const seen: string[] = [];
/** Path → status the stand-in answers instead of its normal answer (a broken service). */
const broken = new Map<string, number>();

function keyOf(req: IncomingMessage): string | undefined {
  const k = req.headers.apikey;
  return typeof k === "string" ? k : undefined;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    seen.push(`${req.method} ${path} ${keyOf(req) === SERVICE ? "service" : keyOf(req) === ANON ? "anon" : "none"}`);
    const key = keyOf(req);
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (broken.has(path)) return answer(broken.get(path) as number, { message: "upstream down" });
    if (key !== ANON && key !== SERVICE) return answer(401, { message: "No API key found in request" });
    if (path.startsWith("/pg/")) {
      if (key !== SERVICE) return answer(403, { message: "forbidden" });
      return answer(200, [{ ok: 1 }]);
    }
    if (path === "/auth/v1/health") return answer(200, { version: "v2", name: "GoTrue" });
    if (path === "/rest/v1/") return answer(200, { swagger: "2.0" });
    if (path === "/storage/v1/bucket") return answer(200, []);
    return answer(404, { message: "no route" });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const ALL = ["kong", "auth", "rest", "storage", "meta", "db"];

describe("the upgrade's API check", () => {
  it("passes when the gateway guards its routes and each service answers through it", async () => {
    seen.length = 0;
    expect(await apiSmoke({ gateway: `${base}/`, services: ALL, anonKey: ANON, serviceKey: SERVICE })).toEqual([]);
    expect(seen).toEqual([
      "GET /pg/ none",
      "POST /pg/query service",
      "GET /auth/v1/health anon",
      "GET /rest/v1/ anon",
      "GET /storage/v1/bucket service",
    ]);
  });

  it("checks only the services the release runs", async () => {
    seen.length = 0;
    expect(await apiSmoke({ gateway: base, services: ["gateway", "meta", "db"], serviceKey: SERVICE })).toEqual([]);
    expect(seen).toEqual(["GET /pg/ none", "POST /pg/query service"]);
  });

  it("names each service that does not answer, with its status, never a key", async () => {
    broken.set("/rest/v1/", 502);
    broken.set("/storage/v1/bucket", 500);
    try {
      const problems = await apiSmoke({ gateway: base, services: ALL, anonKey: ANON, serviceKey: SERVICE });
      expect(problems).toEqual([
        expect.stringMatching(/^PostgREST: GET \/rest\/v1\/ answered HTTP 502 .*upstream down/),
        expect.stringMatching(/^Storage: GET \/storage\/v1\/bucket answered HTTP 500/),
      ]);
      expect(problems.join(" ")).not.toContain(ANON);
      expect(problems.join(" ")).not.toContain(SERVICE);
    } finally {
      broken.clear();
    }
  });

  it("fails a gateway that lets a request without a key through, and one that does not answer", async () => {
    broken.set("/pg/", 200);
    try {
      const open = await apiSmoke({ gateway: base, services: [], anonKey: ANON });
      expect(open).toEqual([expect.stringMatching(/^the gateway: GET \/pg\/ answered HTTP 200.*not 401 or 403/)]);
    } finally {
      broken.clear();
    }
    const down = await apiSmoke(
      { gateway: "http://127.0.0.1:1", services: ["auth"], anonKey: ANON },
      { timeoutMs: 2000 },
    );
    expect(down).toHaveLength(2);
    expect(down[0]).toMatch(/^the gateway: GET \/pg\/ failed/);
  });
});
