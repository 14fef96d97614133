import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { main } from "./main.js";
import { runSmoke, type SmokeTarget, type StackServices } from "./smoke.js";

/**
 * The smoke check's step logic against an in-process fake of a project's API (gateway routes of
 * Auth, PostgREST, Storage, Realtime's WebSocket, a function) and of the control plane's calls the
 * command makes. The real thing, on a real `local` project, is test/cli/smoke.e2e.test.ts.
 */

const REF = "abcdefghijklmnopqrst";
const ANON = "aaa.anon.key";
const SERVICE = "sss.service.key";
const ALL: StackServices = {
  db: true,
  gateway: true,
  auth: true,
  rest: true,
  storage: true,
  realtime: true,
  functions: true,
};
const LOCAL: StackServices = { ...ALL, auth: false, rest: false, storage: false, realtime: false, functions: false };

interface Fake {
  url: string;
  /** What the fake does differently. */
  opts: {
    autoConfirm: boolean;
    guardPg: boolean;
    corruptDownload: boolean;
    refuseJoin: boolean;
    schemaCacheMisses: number;
  };
  tables: Set<string>;
  users: Map<string, { id: string; password: string }>;
  buckets: Map<string, Map<string, Buffer>>;
  sqlLog: string[];
  adminDeletes: number;
  sql: (query: string) => Promise<Record<string, unknown>[]>;
  close: () => Promise<void>;
}

const fakes: Fake[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f.close();
});

const body = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
  });

async function startFake(): Promise<Fake> {
  const f = {
    opts: { autoConfirm: true, guardPg: true, corruptDownload: false, refuseJoin: false, schemaCacheMisses: 2 },
    tables: new Set<string>(),
    users: new Map(),
    buckets: new Map(),
    sqlLog: [] as string[],
    adminDeletes: 0,
  } as unknown as Fake;
  const rows = new Map<string, { id: string; note: string }[]>();
  let misses = 0;
  // The control plane's SQL path, reduced to what the smoke check sends.
  f.sql = async (query) => {
    f.sqlLog.push(query);
    const create = /create table public\.(\w+)/.exec(query);
    if (create?.[1]) {
      f.tables.add(create[1]);
      rows.set(create[1], []);
      return [];
    }
    const insert = /insert into public\.(\w+) \(id, note\) values \('([^']+)', '([^']+)'\)/.exec(query);
    if (insert?.[1] && insert[2] && insert[3]) {
      rows.get(insert[1])?.push({ id: insert[2], note: insert[3] });
      return [{ id: insert[2], note: insert[3] }];
    }
    const select = /from public\.(\w+) where id = '([^']+)'/.exec(query);
    if (select?.[1]) return (rows.get(select[1]) ?? []).filter((r) => r.id === select[2]);
    const drop = /drop table if exists public\.(\w+)/.exec(query);
    if (drop?.[1]) {
      f.tables.delete(drop[1]);
      return [];
    }
    const del = /delete from auth\.users where id = '([^']+)'/.exec(query);
    if (del?.[1]) {
      for (const [email, u] of f.users) if (u.id === del[1]) f.users.delete(email);
      return [];
    }
    throw new Error(`fake SQL does not know: ${query}`);
  };

  const reply = (res: ServerResponse, status: number, json: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(json));
  };
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    const key = req.headers.apikey;
    const data = await body(req);
    const parsed = () => JSON.parse(data.toString()) as Record<string, unknown>;
    // The control plane.
    if (path === `/platform/projects/${REF}/stack`) {
      return reply(res, 200, {
        ref: REF,
        status: "ACTIVE_HEALTHY",
        release: "fake",
        parts: ["storage"],
        services: { ...ALL, pooler: false },
        api_url: f.url,
      });
    }
    if (path === `/v1/projects/${REF}/api-keys`) {
      return reply(res, 200, [
        { name: "anon", type: "legacy", api_key: ANON },
        { name: "service_role", type: "legacy", api_key: SERVICE },
      ]);
    }
    if (path === `/v1/projects/${REF}/database/query`) {
      return reply(res, 201, await f.sql(String(parsed().query)));
    }
    // The project's gateway.
    if (path === "/pg/config/version") {
      if (f.opts.guardPg && key !== SERVICE) return reply(res, 401, { message: "no key" });
      return reply(res, 200, { version: "PostgreSQL 15.8 on x86_64" });
    }
    const adminUser = /^\/auth\/v1\/admin\/users\/([0-9a-f-]{36})$/.exec(path);
    if (adminUser?.[1] && req.method === "DELETE") {
      if (key !== SERVICE || req.headers.authorization !== `Bearer ${SERVICE}`)
        return reply(res, 401, { msg: "admin" });
      for (const [email, u] of f.users) if (u.id === adminUser[1]) f.users.delete(email);
      f.adminDeletes += 1;
      return reply(res, 200, {});
    }
    if (path.startsWith("/auth/v1/") && key !== ANON) return reply(res, 401, { message: "Invalid API key" });
    if (path === "/auth/v1/signup") {
      const b = parsed();
      const id = "0b0e5a43-6c5a-4d4e-9a38-7f3c1f0b7d11";
      f.users.set(String(b.email), { id, password: String(b.password) });
      return reply(res, 200, f.opts.autoConfirm ? { access_token: "session", user: { id } } : { id, email: b.email });
    }
    if (path === "/auth/v1/token") {
      const b = parsed();
      const u = f.users.get(String(b.email));
      if (!u || u.password !== b.password) return reply(res, 400, { msg: "Invalid login credentials" });
      if (!f.opts.autoConfirm)
        return reply(res, 400, { error_code: "email_not_confirmed", msg: "Email not confirmed" });
      return reply(res, 200, { access_token: "user-token" });
    }
    const rest = /^\/rest\/v1\/(\w+)$/.exec(path);
    if (rest?.[1]) {
      if (key !== ANON || req.headers.authorization !== "Bearer user-token") return reply(res, 401, { message: "jwt" });
      if (!f.tables.has(rest[1]) || misses < f.opts.schemaCacheMisses) {
        misses += 1;
        return reply(res, 404, { code: "PGRST205", message: "Could not find the table in the schema cache" });
      }
      const t = rows.get(rest[1]) ?? [];
      if (req.method === "POST") {
        const row = parsed() as { id: string; note: string };
        t.push(row);
        return reply(res, 201, [row]);
      }
      const id = url.searchParams.get("id")?.replace(/^eq\./, "");
      return reply(
        res,
        200,
        t.filter((r) => r.id === id),
      );
    }
    if (path.startsWith("/storage/v1/")) {
      if (key !== SERVICE) return reply(res, 403, { message: "new row violates row-level security policy" });
      if (path === "/storage/v1/bucket" && req.method === "POST") {
        f.buckets.set(String(parsed().id), new Map());
        return reply(res, 200, { name: parsed().id });
      }
      const bucketPath = /^\/storage\/v1\/bucket\/([\w-]+)$/.exec(path);
      if (bucketPath?.[1] && req.method === "DELETE") {
        if (f.buckets.get(bucketPath[1])?.size) return reply(res, 400, { message: "Bucket not empty" });
        f.buckets.delete(bucketPath[1]);
        return reply(res, 200, { message: "Successfully deleted" });
      }
      const obj = /^\/storage\/v1\/object\/([\w-]+)(?:\/(.+))?$/.exec(path);
      const bucket = obj?.[1] ? f.buckets.get(obj[1]) : undefined;
      if (obj && bucket) {
        if (req.method === "POST" && obj[2]) {
          bucket.set(obj[2], data);
          return reply(res, 200, { Key: `${obj[1]}/${obj[2]}` });
        }
        if (req.method === "GET" && obj[2]) {
          const stored = bucket.get(obj[2]);
          if (!stored) return reply(res, 404, { message: "Object not found" });
          const out = Buffer.from(stored);
          if (f.opts.corruptDownload) out[0] = (out[0] ?? 0) ^ 0xff;
          res.writeHead(200, { "content-type": "application/octet-stream" });
          return res.end(out);
        }
        if (req.method === "DELETE" && !obj[2]) {
          for (const p of (parsed().prefixes as string[]) ?? []) bucket.delete(p);
          return reply(res, 200, []);
        }
      }
      return reply(res, 404, { message: "not found" });
    }
    if (path === "/functions/v1/hello" && req.headers.authorization?.startsWith("Bearer ")) {
      return reply(res, 200, { message: "Hello" });
    }
    return reply(res, 404, { message: "no route" });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/realtime/v1/websocket" || url.searchParams.get("apikey") !== ANON) {
      socket.end("HTTP/1.1 401 Unauthorized\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (raw) => {
        const m = JSON.parse(raw.toString()) as { topic: string; event: string; payload: unknown; ref: string };
        if (m.event === "phx_join") {
          const status = f.opts.refuseJoin ? "error" : "ok";
          ws.send(
            JSON.stringify({
              topic: m.topic,
              event: "phx_reply",
              payload: { status, response: f.opts.refuseJoin ? { reason: "Unauthorized" } : {} },
              ref: m.ref,
            }),
          );
        } else if (m.event === "broadcast") {
          ws.send(JSON.stringify({ topic: m.topic, event: "broadcast", payload: m.payload, ref: null }));
        }
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  f.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  f.close = async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  fakes.push(f);
  return f;
}

function target(f: Fake, over: Partial<SmokeTarget> = {}): SmokeTarget {
  return {
    ref: REF,
    release: "fake",
    apiUrl: f.url,
    services: ALL,
    anonKey: ANON,
    serviceKey: SERVICE,
    sql: f.sql,
    functionName: "hello",
    timeoutMs: 3000,
    ...over,
  };
}

const byName = (steps: { name: string; status: string; detail: string }[]) =>
  Object.fromEntries(steps.map((s) => [s.name, s]));

describe("runSmoke", () => {
  it("runs every step in order against a project that has every service, and cleans up", async () => {
    const f = await startFake();
    const events: string[] = [];
    const r = await runSmoke(
      target(f, { onStep: (e) => events.push(`${e.phase}:${e.phase === "start" ? e.name : e.result.name}`) }),
    );
    expect(
      r.steps.map((s) => [s.name, s.status]),
      JSON.stringify(r.steps, null, 2),
    ).toEqual([
      ["gateway", "ok"],
      ["database", "ok"],
      ["auth-signup", "ok"],
      ["auth-signin", "ok"],
      ["rest", "ok"],
      ["storage", "ok"],
      ["realtime", "ok"],
      ["functions", "ok"],
      ["cleanup", "ok"],
    ]);
    expect(r).toMatchObject({ ok: true, counts: { ok: 9, failed: 0, skipped: 0 }, api_url: f.url });
    const s = byName(r.steps);
    expect(s.gateway?.detail).toContain("without a key: HTTP 401");
    expect(s.gateway?.detail).toContain("PostgreSQL 15.8");
    // PostgREST was asked as the signed-in user (the fake answers 401 otherwise).
    expect(s.rest?.detail).toContain("as the signed-in user");
    expect(s.storage?.detail).toMatch(/sha-256 [0-9a-f]{12}… matches/);
    expect(s.realtime?.detail).toMatch(/received our broadcast back/);
    // Events: a start and an end per step, in order.
    expect(events.slice(0, 4)).toEqual(["start:gateway", "end:gateway", "start:database", "end:database"]);
    // Everything made is gone: the table, the user, the bucket.
    expect(f.tables.size).toBe(0);
    expect(f.users.size).toBe(0);
    expect(f.buckets.size).toBe(0);
    // The user went through Auth's admin API (the service_role key was at hand), not SQL.
    expect(f.adminDeletes).toBe(1);
    expect(f.sqlLog.some((q) => q.includes("auth.users"))).toBe(false);
    expect(f.sqlLog.some((q) => q.includes("notify pgrst, 'reload schema'"))).toBe(true);
  });

  it("skips what a `local` project does not run, and says why", async () => {
    const f = await startFake();
    const r = await runSmoke(target(f, { release: "local", services: LOCAL }));
    const s = byName(r.steps);
    expect(r.ok).toBe(true);
    expect(r.counts).toEqual({ ok: 3, failed: 0, skipped: 6 - 0 });
    for (const [name, label] of [
      ["auth-signup", "Auth (GoTrue)"],
      ["auth-signin", "Auth (GoTrue)"],
      ["rest", "PostgREST"],
      ["storage", "Storage"],
      ["realtime", "Realtime"],
      ["functions", "Edge Functions"],
    ] as const) {
      expect(s[name], name).toMatchObject({ status: "skipped" });
      expect(s[name]?.detail).toBe(`release local (as this project runs it) has no ${label}`);
    }
    expect(s.cleanup).toMatchObject({ status: "ok" });
    expect(s.cleanup?.detail).toMatch(/^removed table public\.supamanager_smoke_[0-9a-f]{8}$/);
  });

  it("sign-in without auto-confirm fails with what to change; later steps go on as anon", async () => {
    const f = await startFake();
    f.opts.autoConfirm = false;
    const r = await runSmoke(target(f));
    const s = byName(r.steps);
    expect(r.ok).toBe(false);
    expect(s["auth-signup"]).toMatchObject({ status: "ok" });
    expect(s["auth-signup"]?.detail).toContain("awaiting email confirmation");
    expect(s["auth-signin"]?.status).toBe("failed");
    expect(s["auth-signin"]?.detail).toContain("HTTP 400: Email not confirmed");
    expect(s["auth-signin"]?.detail).toContain("auto-confirm");
    // The fake's PostgREST wants the user's token: as anon it refuses, and the step says so.
    expect(s.rest?.status).toBe("failed");
    expect(s.rest?.detail).toContain("insert as anon: HTTP 401");
    // The unconfirmed user is still removed.
    expect(f.users.size).toBe(0);
  });

  it("a download that differs from the upload fails the Storage step", async () => {
    const f = await startFake();
    f.opts.corruptDownload = true;
    const s = byName((await runSmoke(target(f))).steps);
    expect(s.storage?.status).toBe("failed");
    expect(s.storage?.detail).toMatch(/sha-256 [0-9a-f]{12}… differs from the upload's/);
    expect(f.buckets.size).toBe(0);
  });

  it("a refused Realtime join fails the step with the server's answer", async () => {
    const f = await startFake();
    f.opts.refuseJoin = true;
    const s = byName((await runSmoke(target(f))).steps);
    expect(s.realtime?.status).toBe("failed");
    expect(s.realtime?.detail).toContain("was refused");
    expect(s.realtime?.detail).toContain("Unauthorized");
  });

  it("a gateway that lets a keyless request through to /pg/ fails", async () => {
    const f = await startFake();
    f.opts.guardPg = false;
    const s = byName((await runSmoke(target(f, { services: LOCAL }))).steps);
    expect(s.gateway?.status).toBe("failed");
    expect(s.gateway?.detail).toContain("answered HTTP 200, not 401");
  });

  it("without the service_role key: the keyed gateway check is left out and Storage fails saying why", async () => {
    const f = await startFake();
    const { serviceKey: _omit, ...rest } = target(f);
    const s = byName((await runSmoke(rest)).steps);
    expect(s.gateway).toMatchObject({ status: "ok" });
    expect(s.gateway?.detail).toContain("keyed check skipped");
    expect(s.storage?.status).toBe("failed");
    expect(s.storage?.detail).toContain("service_role key, which your role may not read");
    // The test user is removed through the SQL path instead.
    expect(f.users.size).toBe(0);
    expect(f.adminDeletes).toBe(0);
    expect(f.sqlLog.some((q) => q.includes("delete from auth.users"))).toBe(true);
  });

  it("without --function the function step is skipped, saying how to name one", async () => {
    const f = await startFake();
    const { functionName: _omit, ...rest } = target(f);
    const s = byName((await runSmoke(rest)).steps);
    expect(s.functions).toMatchObject({ status: "skipped" });
    expect(s.functions?.detail).toContain("--function <name>");
  });

  it("an API address not reachable from here: the SQL path still runs, the API steps fail as not attempted", async () => {
    const f = await startFake();
    const closed = await startFake();
    const deadUrl = closed.url;
    await closed.close();
    fakes.splice(fakes.indexOf(closed), 1);
    const started = Date.now();
    const r = await runSmoke(target(f, { apiUrl: deadUrl }));
    const s = byName(r.steps);
    expect(s.gateway?.status).toBe("failed");
    expect(s.gateway?.detail).toContain(`cannot reach ${deadUrl}`);
    expect(s.database?.status).toBe("ok");
    for (const name of ["auth-signup", "rest", "storage", "realtime", "functions"]) {
      expect(s[name]?.status, name).toBe("failed");
    }
    expect(s["auth-signup"]?.detail).toContain("not reachable from here (see --api-url)");
    expect(s.rest?.detail).toContain("not attempted");
    // The table made through the control plane is still dropped.
    expect(s.cleanup?.status).toBe("ok");
    expect(f.tables.size).toBe(0);
    // No step waited for a timeout.
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe("supamanager projects smoke", () => {
  it("prints the report as JSON and exits 0 when every step passed, 4 when one failed", async () => {
    const f = await startFake();
    const run = async () => {
      let stdout = "";
      let stderr = "";
      const code = await main(["projects", "smoke", REF, "--function", "hello", "--json"], {
        stdout: (t) => {
          stdout += t;
        },
        stderr: (t) => {
          stderr += t;
        },
        env: { SUPAMANAGER_URL: f.url, SUPAMANAGER_TOKEN: "sbp_test", SUPAMANAGER_CONFIG: "/nonexistent/config.json" },
      });
      return { code, report: JSON.parse(stdout) as { ok: boolean; steps: { name: string; status: string }[] }, stderr };
    };
    const good = await run();
    expect(good.code, good.stderr).toBe(0);
    expect(good.report.ok).toBe(true);
    expect(good.report.steps).toHaveLength(9);
    // Progress goes to stderr, one line per step, never to stdout.
    expect(good.stderr).toContain(`Smoke check of ${REF} (release fake) at ${f.url}`);
    expect(good.stderr).toMatch(/^ok storage: .*\(\d+ ms\)$/m);

    f.opts.corruptDownload = true;
    const bad = await run();
    expect(bad.code).toBe(4);
    expect(bad.report.ok).toBe(false);
    expect(bad.report.steps.find((s) => s.name === "storage")?.status).toBe("failed");
    expect(bad.stderr).toMatch(/^FAILED storage: /m);
  });
});
