import { createHash, randomBytes } from "node:crypto";
import WebSocket from "ws";
import { z } from "zod";

/**
 * `supamanager projects smoke`: prove that a running project works the way its clients use it
 * (ADR 0031). Each step talks to the project's API (its gateway) from where the CLI runs, with the
 * project's own keys, except the scratch table, which is made and dropped through the control
 * plane's SQL path (the host agent → postgres-meta), so it works from anywhere.
 *
 * A step is `ok`, `failed` (with the reason) or `skipped` (the project does not run that service,
 * or the step was not asked for). Nothing here throws: every problem is a step's reason.
 */

export const STEP_NAMES = [
  "gateway",
  "database",
  "auth-signup",
  "auth-signin",
  "rest",
  "storage",
  "realtime",
  "functions",
  "cleanup",
] as const;
export type StepName = (typeof STEP_NAMES)[number];
export type StepStatus = "ok" | "failed" | "skipped";

export interface StepResult {
  name: StepName;
  title: string;
  status: StepStatus;
  /** What was checked (ok), why it failed, or why it was skipped. */
  detail: string;
  ms: number;
}

/** The Supabase services a step needs, as GET /platform/projects/{ref}/stack names them. */
export type StackServices = Record<"db" | "gateway" | "auth" | "rest" | "storage" | "realtime" | "functions", boolean>;

const LABEL: Record<keyof StackServices, string> = {
  db: "a database",
  gateway: "an API gateway",
  auth: "Auth (GoTrue)",
  rest: "PostgREST",
  storage: "Storage",
  realtime: "Realtime",
  functions: "Edge Functions",
};

export interface SmokeTarget {
  ref: string;
  release: string;
  /** The project's API base URL (its gateway), no trailing slash. */
  apiUrl: string;
  services: StackServices;
  anonKey?: string;
  /** Needed for Storage (a scratch bucket) and the gateway's keyed check; absent when the role may not read it. */
  serviceKey?: string;
  /** Run SQL on the project's database through the control plane; rejects with a message. */
  sql: (query: string) => Promise<Record<string, unknown>[]>;
  /** A deployed function to call (POST {}); absent → the step is skipped. */
  functionName?: string;
  /** Per HTTP call and per Realtime wait. */
  timeoutMs?: number;
  /** Told when a step starts and when it ends (progress). */
  onStep?: (event: { phase: "start"; name: StepName; title: string } | { phase: "end"; result: StepResult }) => void;
}

export interface SmokeReport {
  ref: string;
  release: string;
  api_url: string;
  ok: boolean;
  counts: Record<StepStatus, number>;
  steps: StepResult[];
}

class StepFailure extends Error {}
class StepSkip extends Error {}
const fail = (why: string): never => {
  throw new StepFailure(why);
};

/** The first readable message of an error answer (GoTrue's msg/error_description, PostgREST's message, …). */
function answerMessage(status: number, text: string): string {
  const body = json(text);
  const b = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const msg = [b.msg, b.message, b.error_description, b.error].find(
    (v): v is string => typeof v === "string" && v !== "",
  );
  const short = (msg ?? text.replace(/\s+/g, " ").trim()).slice(0, 300);
  return `HTTP ${status}${short ? `: ${short}` : ""}`;
}

function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  return e.cause?.message ?? e.cause?.code ?? e.message ?? String(err);
}

/** The answer's JSON, or null when it is not JSON. */
function json(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

interface Answer {
  status: number;
  text: string;
  bytes: Buffer;
}

export async function runSmoke(t: SmokeTarget): Promise<SmokeReport> {
  const timeoutMs = t.timeoutMs ?? 15_000;
  const tag = randomBytes(4).toString("hex");
  const table = `supamanager_smoke_${tag}`;
  const email = `supamanager-smoke-${tag}@example.com`;
  const password = randomBytes(18).toString("base64url");
  const bucket = `supamanager-smoke-${tag}`;
  const results: StepResult[] = [];
  const cleanups: { what: string; run: () => Promise<void> }[] = [];
  /** Set when the gateway could not be reached at all: every later call to it would only time out. */
  let unreachable: string | undefined;
  let tableMade = false;
  let userId: string | undefined;
  let userToken: string | undefined;

  async function http(method: string, path: string, init: { headers?: Record<string, string>; body?: unknown } = {}) {
    if (unreachable) fail(unreachable);
    const headers: Record<string, string> = { ...init.headers };
    let body: string | Buffer | undefined;
    if (Buffer.isBuffer(init.body)) {
      body = init.body;
      headers["content-type"] ??= "application/octet-stream";
    } else if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers["content-type"] ??= "application/json";
    }
    let res: Response;
    try {
      res = await fetch(`${t.apiUrl}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      return fail(`${method} ${path}: cannot reach ${t.apiUrl}: ${networkReason(err, timeoutMs)}`);
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, text: bytes.toString("utf8"), bytes } satisfies Answer;
  }

  const anon = (): Record<string, string> => {
    if (!t.anonKey) fail("the project has no anon key to call its API with");
    return { apikey: t.anonKey as string, authorization: `Bearer ${userToken ?? t.anonKey}` };
  };
  const service = (): Record<string, string> => {
    if (!t.serviceKey) {
      fail("needs the project's service_role key, which your role may not read (owners and administrators may)");
    }
    return { apikey: t.serviceKey as string, authorization: `Bearer ${t.serviceKey}` };
  };
  const needs = (s: keyof StackServices) => {
    if (!t.services[s]) throw new StepSkip(`release ${t.release} (as this project runs it) has no ${LABEL[s]}`);
  };
  const expect2xx = (what: string, a: Answer) => {
    if (a.status < 200 || a.status > 299) fail(`${what}: ${answerMessage(a.status, a.text)}`);
  };

  async function step(name: StepName, title: string, body: () => Promise<string>): Promise<void> {
    t.onStep?.({ phase: "start", name, title });
    const started = Date.now();
    let status: StepStatus = "ok";
    let detail: string;
    try {
      detail = await body();
    } catch (err) {
      if (err instanceof StepSkip) status = "skipped";
      else status = "failed";
      detail = err instanceof Error ? err.message : String(err);
    }
    const result: StepResult = { name, title, status, detail, ms: Date.now() - started };
    results.push(result);
    t.onStep?.({ phase: "end", result });
  }
  const passed = (name: StepName) => results.find((r) => r.name === name)?.status === "ok";

  await step("gateway", "API gateway answers and refuses a request without a key", async () => {
    needs("gateway");
    let keyless: Answer;
    try {
      keyless = await http("GET", "/pg/config/version");
    } catch (err) {
      unreachable = `not attempted: the project's API at ${t.apiUrl} is not reachable from here (see --api-url)`;
      throw err;
    }
    if (keyless.status !== 401 && keyless.status !== 403) {
      fail(`a request without a key to /pg/ answered HTTP ${keyless.status}, not 401: the gateway does not guard it`);
    }
    if (!t.serviceKey)
      return `${t.apiUrl} answers; without a key: HTTP ${keyless.status} (keyed check skipped: no service_role key)`;
    const keyed = await http("GET", "/pg/config/version", { headers: service() });
    expect2xx("with the service_role key, /pg/config/version", keyed);
    const version = z.looseObject({ version: z.string() }).safeParse(json(keyed.text));
    return `${t.apiUrl} answers; without a key: HTTP ${keyless.status}; with the service_role key: PostgreSQL ${version.success ? (version.data.version.split(" ")[1] ?? version.data.version) : "answered"}`;
  });

  await step("database", "Scratch table: create, write and read a row (SQL through the control plane)", async () => {
    needs("db");
    // The API roles exist only on releases with PostgREST; grant to them where they do.
    await t.sql(
      `create table public.${table} (id text primary key, note text not null);
do $$ begin
  if exists (select 1 from pg_roles where rolname = 'anon') and exists (select 1 from pg_roles where rolname = 'authenticated') then
    execute 'grant select, insert on public.${table} to anon, authenticated';
  end if;
end $$;
notify pgrst, 'reload schema';`,
    );
    tableMade = true;
    cleanups.push({
      what: `table public.${table}`,
      run: async () => {
        await t.sql(`drop table if exists public.${table}; notify pgrst, 'reload schema';`);
      },
    });
    const rows = await t.sql(
      `insert into public.${table} (id, note) values ('sql-${tag}', 'written by sql') returning id, note`,
    );
    const back = await t.sql(`select id, note from public.${table} where id = 'sql-${tag}'`);
    if (rows.length !== 1 || back.length !== 1 || back[0]?.note !== "written by sql") {
      fail(`the row written was not read back (got ${JSON.stringify(back).slice(0, 200)})`);
    }
    return `public.${table} created; one row written and read back`;
  });

  await step("auth-signup", "Auth: sign up a user with the anon key", async () => {
    needs("auth");
    const a = await http("POST", "/auth/v1/signup", { headers: anon(), body: { email, password } });
    expect2xx("sign-up", a);
    const body = z
      .looseObject({
        id: z.string().optional(),
        user: z.looseObject({ id: z.string() }).optional(),
        access_token: z.string().optional(),
      })
      .safeParse(json(a.text));
    if (!body.success) fail("sign-up answered without a user");
    const b = body.data as NonNullable<typeof body.data>;
    userId = b.user?.id ?? b.id;
    if (userId && /^[0-9a-f-]{36}$/i.test(userId)) {
      const id = userId;
      cleanups.push({
        what: `user ${email}`,
        // Auth's admin API when the service_role key is at hand (Auth removes its own rows), else SQL.
        run: t.serviceKey
          ? async () =>
              expect2xx("delete the user", await http("DELETE", `/auth/v1/admin/users/${id}`, { headers: service() }))
          : async () => {
              await t.sql(`delete from auth.users where id = '${id}'`);
            },
      });
    }
    return `${email} signed up${b.access_token ? " (confirmed at once: auto-confirm is on)" : " (awaiting email confirmation)"}`;
  });

  await step("auth-signin", "Auth: sign in with the password", async () => {
    needs("auth");
    if (!passed("auth-signup")) fail("not attempted: sign-up failed");
    const a = await http("POST", "/auth/v1/token?grant_type=password", { headers: anon(), body: { email, password } });
    if (a.status === 400 && /confirm/i.test(a.text)) {
      fail(
        `${answerMessage(a.status, a.text)}: turn on auto-confirm in the project's auth settings, or give it SMTP so the confirmation mail goes out`,
      );
    }
    expect2xx("sign-in", a);
    const s = z.looseObject({ access_token: z.string() }).safeParse(json(a.text));
    if (!s.success) fail("sign-in answered without an access token");
    userToken = s.data?.access_token;
    return `${email} signed in: got an access token`;
  });

  await step("rest", "PostgREST: insert and read a row", async () => {
    needs("rest");
    if (!tableMade) fail("not attempted: the scratch table was not created");
    const as = userToken ? "the signed-in user" : "anon";
    const id = `rest-${tag}`;
    // The schema cache reloads after the table was made: a short while of "table not found" is normal.
    const deadline = Date.now() + 20_000;
    let insert: Answer;
    for (;;) {
      insert = await http("POST", `/rest/v1/${table}`, {
        headers: { ...anon(), prefer: "return=representation" },
        body: { id, note: "written through PostgREST" },
      });
      if (!(insert.status === 404 || /PGRST20[45]/.test(insert.text)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect2xx(`insert as ${as}`, insert);
    const read = await http("GET", `/rest/v1/${table}?id=eq.${id}&select=id,note`, { headers: anon() });
    expect2xx(`read as ${as}`, read);
    const rows = z.array(z.object({ id: z.string(), note: z.string() })).safeParse(json(read.text));
    if (!rows.success || rows.data.length !== 1 || rows.data[0]?.note !== "written through PostgREST") {
      fail(`the row inserted was not read back (got ${read.text.slice(0, 200)})`);
    }
    return `inserted and read back one row of public.${table} as ${as}`;
  });

  await step("storage", "Storage: upload and download a file (sha-256 compared)", async () => {
    needs("storage");
    const headers = service();
    const made = await http("POST", "/storage/v1/bucket", {
      headers,
      body: { id: bucket, name: bucket, public: false },
    });
    expect2xx("create a scratch bucket", made);
    const object = "smoke.bin";
    cleanups.push({
      what: `bucket ${bucket}`,
      run: async () => {
        await http("DELETE", `/storage/v1/object/${bucket}`, { headers, body: { prefixes: [object] } });
        const gone = await http("DELETE", `/storage/v1/bucket/${bucket}`, { headers });
        expect2xx("delete the bucket", gone);
      },
    });
    const data = randomBytes(64 * 1024);
    const sent = createHash("sha256").update(data).digest("hex");
    const up = await http("POST", `/storage/v1/object/${bucket}/${object}`, { headers, body: data });
    expect2xx("upload", up);
    const down = await http("GET", `/storage/v1/object/${bucket}/${object}`, { headers });
    expect2xx("download", down);
    const got = createHash("sha256").update(down.bytes).digest("hex");
    if (got !== sent)
      fail(`downloaded ${down.bytes.length} bytes whose sha-256 ${got.slice(0, 12)}… differs from the upload's`);
    return `64 KiB uploaded to ${bucket}/${object} and downloaded, sha-256 ${sent.slice(0, 12)}… matches`;
  });

  await step("realtime", "Realtime: receive a broadcast over the WebSocket", async () => {
    needs("realtime");
    if (unreachable) fail(unreachable);
    const key = anon().apikey as string;
    return broadcastRoundTrip(t.apiUrl, key, userToken ?? key, `supamanager-smoke-${tag}`, timeoutMs);
  });

  await step("functions", "Edge Functions: call a function", async () => {
    needs("functions");
    if (!t.functionName) throw new StepSkip("no function named: give --function <name> (a deployed function)");
    const a = await http("POST", `/functions/v1/${encodeURIComponent(t.functionName)}`, { headers: anon(), body: {} });
    expect2xx(`function ${t.functionName}`, a);
    return `function ${t.functionName} answered HTTP ${a.status}`;
  });

  await step("cleanup", "Clean up what the smoke check made", async () => {
    if (cleanups.length === 0) throw new StepSkip("nothing was made");
    const failed: string[] = [];
    // Storage and users first, the table last (nothing depends on it, but it is what a failed run most likely leaves).
    for (const c of [...cleanups].reverse()) {
      await c
        .run()
        .catch((err: unknown) => failed.push(`${c.what}: ${err instanceof Error ? err.message : String(err)}`));
    }
    if (failed.length) fail(`left behind: ${failed.join("; ")}`);
    return `removed ${cleanups.map((c) => c.what).join(", ")}`;
  });

  const counts: Record<StepStatus, number> = { ok: 0, failed: 0, skipped: 0 };
  for (const r of results) counts[r.status] += 1;
  return { ref: t.ref, release: t.release, api_url: t.apiUrl, ok: counts.failed === 0, counts, steps: results };
}

const Frame = z.looseObject({
  topic: z.string(),
  event: z.string(),
  payload: z.unknown(),
  ref: z.string().nullable().optional(),
});

/**
 * Join a broadcast channel (Phoenix protocol v1, JSON) with `self: true`, broadcast one message on
 * it, and resolve when the same message comes back from the server.
 */
export function broadcastRoundTrip(
  apiUrl: string,
  apiKey: string,
  accessToken: string,
  channel: string,
  timeoutMs: number,
): Promise<string> {
  const url = new URL(`${apiUrl}/realtime/v1/websocket`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("apikey", apiKey);
  url.searchParams.set("vsn", "1.0.0");
  const topic = `realtime:${channel}`;
  const nonce = randomBytes(8).toString("hex");
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: timeoutMs });
    let stage = "connecting";
    const timer = setTimeout(
      () => finish(new StepFailure(`no ${stage} within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
    let done = false;
    function finish(result: Error | string) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on("error", () => undefined);
      ws.terminate();
      if (typeof result === "string") resolve(result);
      else reject(result);
    }
    const send = (event: string, payload: unknown, ref: string) =>
      ws.send(JSON.stringify({ topic, event, payload, ref, join_ref: "1" }));
    ws.on("unexpected-response", (_req, res) =>
      finish(new StepFailure(`the WebSocket upgrade was answered HTTP ${res.statusCode}`)),
    );
    ws.on("error", (err) => finish(new StepFailure(`WebSocket: ${err.message}`)));
    ws.on("close", (code) => finish(new StepFailure(`the server closed the WebSocket (${code}) during ${stage}`)));
    ws.on("open", () => {
      stage = "join reply";
      send(
        "phx_join",
        {
          config: {
            broadcast: { self: true, ack: false },
            presence: { key: "" },
            postgres_changes: [],
            private: false,
          },
          access_token: accessToken,
        },
        "1",
      );
    });
    ws.on("message", (raw) => {
      let frame: z.output<typeof Frame>;
      try {
        frame = Frame.parse(JSON.parse(raw.toString()));
      } catch {
        return;
      }
      if (frame.topic !== topic) return;
      if (frame.event === "phx_reply" && frame.ref === "1") {
        const reply = z.looseObject({ status: z.string(), response: z.unknown() }).safeParse(frame.payload);
        if (!reply.success || reply.data.status !== "ok") {
          finish(new StepFailure(`joining ${topic} was refused: ${JSON.stringify(frame.payload).slice(0, 200)}`));
          return;
        }
        stage = "broadcast back";
        send("broadcast", { type: "broadcast", event: "supamanager-smoke", payload: { nonce } }, "2");
        return;
      }
      if (frame.event === "phx_error") {
        finish(new StepFailure(`the channel ${topic} failed: ${JSON.stringify(frame.payload).slice(0, 200)}`));
        return;
      }
      if (frame.event === "broadcast") {
        const b = z
          .looseObject({ event: z.string(), payload: z.looseObject({ nonce: z.string() }) })
          .safeParse(frame.payload);
        if (b.success && b.data.event === "supamanager-smoke" && b.data.payload.nonce === nonce) {
          finish(`joined ${topic} and received our broadcast back in ${Date.now() - started} ms`);
        }
      }
    });
  });
}
