import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cleanupTmpDirs,
  type EntryProcess,
  ensureBuilt,
  freshDataDir,
  killAll,
  startEntry,
} from "../support/process.js";
import { call, login, signup, uniqueEmail } from "./http-client.js";

/** HTTP behaviour of the real Node server: CORS, metrics, request ids, body limits, 404s. */

const STUDIO = "http://studio.example.test";
const MAX_BODY = 2048;
let cp: EntryProcess;

beforeAll(async () => {
  ensureBuilt();
  cp = await startEntry({
    SUPAMANAGER_DATA_DIR: freshDataDir(),
    SUPAMANAGER_CORS_ORIGINS: `${STUDIO}, http://other-allowed.test`,
    SUPAMANAGER_MAX_BODY_BYTES: String(MAX_BODY),
  });
}, 180_000);
afterAll(async () => {
  if (cp) expect((await cp.stop()).code).toBe(0);
  await killAll();
  cleanupTmpDirs();
});

const preflight = (origin: string) =>
  call(cp.url, "/platform/profile", {
    method: "OPTIONS",
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": "PATCH",
      "Access-Control-Request-Headers": "authorization, content-type, x-request-id, version, x-connection-encrypted",
    },
  });

describe("CORS", () => {
  it("echoes an allowed origin with credentials on a preflight", async () => {
    const res = await preflight(STUDIO);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(STUDIO);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    const methods = res.headers.get("access-control-allow-methods") ?? "";
    for (const m of ["HEAD", "PATCH", "DELETE"]) expect(methods).toContain(m);
    const headers = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["authorization", "x-request-id", "version", "x-connection-encrypted"])
      expect(headers).toContain(h);
  });

  it("echoes the second configured origin too", async () => {
    const res = await preflight("http://other-allowed.test");
    expect(res.headers.get("access-control-allow-origin")).toBe("http://other-allowed.test");
  });

  it.each([
    ["another origin", "http://evil.test"],
    ["a look-alike origin", `${STUDIO}.evil.test`],
    ["the null origin", "null"],
  ])("gives %s no Access-Control-Allow-Origin", async (_name, origin) => {
    const res = await preflight(origin);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const get = await call(cp.url, "/health", { headers: { Origin: origin } });
    expect(get.status).toBe(200);
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("never answers `*`, even without an Origin", async () => {
    for (const res of [await call(cp.url, "/health"), await preflight(STUDIO)]) {
      expect(res.headers.get("access-control-allow-origin")).not.toBe("*");
    }
    const simple = await call(cp.url, "/health", { headers: { Origin: STUDIO } });
    expect(simple.headers.get("access-control-allow-origin")).toBe(STUDIO);
    expect(simple.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("x-request-id");
  });
});

describe("metrics", () => {
  it("serves Prometheus text with the HTTP and project series", async () => {
    expect((await call(cp.url, "/health")).status).toBe(200);
    const res = await call(cp.url, "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^supamanager_http_requests_total\{method="GET",route="\/health",status="200"\} \d+$/m);
    expect(text).toMatch(/^supamanager_http_request_duration_seconds_bucket\{.*route="\/health".*\} \d+$/m);
    expect(text).toMatch(/^# TYPE supamanager_projects gauge$/m);
  });
});

describe("request ids", () => {
  it("gives every response an X-Request-Id", async () => {
    const a = (await call(cp.url, "/health")).headers.get("x-request-id");
    const b = (await call(cp.url, "/health")).headers.get("x-request-id");
    expect(a).toMatch(/^[0-9a-f-]{36}$/);
    expect(b).toMatch(/^[0-9a-f-]{36}$/);
    expect(a).not.toBe(b);
  });

  it("echoes a well-formed incoming id and logs it on the request's line", async () => {
    const id = `entry-test.${Math.random().toString(36).slice(2, 10)}`;
    const res = await call(cp.url, "/ready", { headers: { "X-Request-Id": id } });
    expect(res.headers.get("x-request-id")).toBe(id);
    const line = await waitForLine(cp.stdout, (l) => l.includes(`"requestId":"${id}"`));
    expect(JSON.parse(line)).toMatchObject({
      level: "info",
      msg: "request",
      requestId: id,
      method: "GET",
      route: "/ready",
      path: "/ready",
      status: 200,
    });
  });

  it.each([
    ["spaces", "not a valid id"],
    ["too long", "a".repeat(129)],
    ["a header injection attempt", "abc<script>"],
  ])("replaces a malformed incoming id (%s)", async (_name, id) => {
    const res = await call(cp.url, "/health", { headers: { "X-Request-Id": id } });
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("limits and unknown routes", () => {
  it("answers 413 JSON for a body over SUPAMANAGER_MAX_BODY_BYTES", async () => {
    const res = await call(cp.url, "/platform/signup", {
      method: "POST",
      json: { email: "big@example.test", password: "x".repeat(MAX_BODY + 1) },
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      message: expect.stringContaining(String(MAX_BODY)),
      code: "payload_too_large",
      requestId: res.headers.get("x-request-id"),
    });
  });

  it("answers 413 for an oversize chunked body without Content-Length", async () => {
    const chunk = new TextEncoder().encode("x".repeat(512));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 8) return controller.close();
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(new URL("/auth/v1/token?grant_type=password", cp.url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      duplex: "half",
      signal: AbortSignal.timeout(10_000),
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe("payload_too_large");
  });

  it("accepts a body under the limit", async () => {
    const res = await call(cp.url, "/auth/v1/token?grant_type=password", {
      method: "POST",
      json: { email: "nobody@example.test", password: "wrong password" },
    });
    expect(res.status).toBe(400);
  });

  it.each([
    ["GET", "/no/such/route"],
    ["POST", "/auth/v1/nothing"],
    ["DELETE", "/health"],
  ])("answers %s %s with a JSON 404", async (method, path) => {
    const res = await call(cp.url, path, { method });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      message: `No route for ${method} ${path}`,
      code: "not_found",
      requestId: res.headers.get("x-request-id"),
    });
  });

  it("answers an unknown /platform path with the SupaManager JSON 404, behind auth", async () => {
    const anonymous = await call(cp.url, "/platform/no-such-thing");
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { code: string }).code).toBe("unauthorized");

    const email = uniqueEmail("http");
    await signup(cp.url, email);
    const res = await call(cp.url, "/platform/no-such-thing", { token: await login(cp.url, email) });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      message: "GET /platform/no-such-thing is not supported by SupaManager",
      code: "not_found",
      requestId: res.headers.get("x-request-id"),
    });
  });
});

async function waitForLine(lines: string[], match: (line: string) => boolean, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = lines.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching log line within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
