import { eq } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { urlForDatabase, withAdminClient } from "../../../test/support/pg.js";
import { ConfigError } from "../config.js";
import { agentRpcs, hosts, jobs } from "../db/schema.js";
import { createLambdaTestRuntime, httpApiEvent, type LambdaTestRuntime, restEvent } from "../test-support/apigw.js";
import { TEST_ENCRYPTION_KEY, TEST_JWT_SECRET } from "../test-support/harness.js";
import { buildLambdaRuntime, LAMBDA_DEFAULT_POOL_MAX, migrate, sweep } from "./lambda.js";

/** The HTTP API on Lambda: synthetic API Gateway v1 and v2 events through hono/aws-lambda, real PostgreSQL. */

let rt: LambdaTestRuntime;
beforeAll(async () => {
  rt = await createLambdaTestRuntime({ SUPAMANAGER_CORS_ORIGINS: "http://studio.test" });
});
afterAll(async () => {
  await rt?.dispose();
});

type Result = { statusCode: number; body: string; isBase64Encoded: boolean; headers?: Record<string, string> };
const call = async (event: unknown) => (await rt.http(event as never)) as Result;
const json = (r: Result) => JSON.parse(r.body) as Record<string, unknown>;

const email = `lambda-${Math.random().toString(36).slice(2, 8)}@example.test`;
const password = "correct horse battery";

describe("HTTP API on Lambda", () => {
  it.each([
    ["REST API (v1)", restEvent],
    ["HTTP API (v2)", httpApiEvent],
  ])("answers /health and /ready through %s", async (_name, make) => {
    const health = await call(make("GET", "/health"));
    expect(health.statusCode).toBe(200);
    expect(json(health)).toEqual({ status: "ok" });
    const ready = await call(make("GET", "/ready"));
    expect(ready.statusCode, ready.body).toBe(200);
    expect(json(ready)).toEqual({ status: "ready" });
  });

  it("signs up with a base64-encoded body (v2), logs in (v1) and calls an authenticated route (v2)", async () => {
    const signup = await call(httpApiEvent("POST", "/platform/signup", { body: { email, password }, base64: true }));
    expect(signup.statusCode, signup.body).toBe(201);

    const login = await call(
      restEvent("POST", "/auth/v1/token", { body: { email, password }, query: { grant_type: "password" } }),
    );
    expect(login.statusCode, login.body).toBe(200);
    const token = json(login).access_token as string;
    expect(token).toMatch(/^ey/);

    const profile = await call(
      httpApiEvent("GET", "/platform/profile", { headers: { Authorization: `Bearer ${token}` } }),
    );
    expect(profile.statusCode, profile.body).toBe(200);
    expect(json(profile).primary_email).toBe(email);

    const anonymous = await call(restEvent("GET", "/platform/profile"));
    expect(anonymous.statusCode).toBe(401);
    expect(json(anonymous).code).toBe("unauthorized");
  });

  it("records the caller's address from the event's requestContext (audit rows)", async () => {
    const wrong = await call(
      httpApiEvent("POST", "/auth/v1/token", {
        body: { email, password: "not the password" },
        query: { grant_type: "password" },
        sourceIp: "192.0.2.77",
      }),
    );
    expect(wrong.statusCode).toBe(400);
    const client = new pg.Client({ connectionString: rt.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ ip: string }>(
        "select ip from audit_log where actor_email = $1 and outcome = 'failure' order by id desc limit 1",
        [email],
      );
      expect(rows[0]?.ip).toBe("192.0.2.77");
    } finally {
      await client.end();
    }
  });

  it.each([
    ["REST API (v1)", restEvent],
    ["HTTP API (v2)", httpApiEvent],
  ])("answers an unknown route with a JSON 404 through %s", async (_name, make) => {
    const res = await call(make("GET", "/no/such/route"));
    expect(res.statusCode).toBe(404);
    expect(json(res)).toMatchObject({ code: "not_found", message: "No route for GET /no/such/route" });
  });

  it.each([
    ["REST API (v1)", restEvent],
    ["HTTP API (v2)", httpApiEvent],
  ])("answers malformed JSON with a 400 through %s", async (_name, make) => {
    const res = await call(
      make("POST", "/platform/signup", { body: '{"email": ', headers: { "Content-Type": "application/json" } }),
    );
    expect(res.statusCode, res.body).toBe(400);
    expect(json(res).code).toBe("invalid_json");
    expect(res.body).not.toMatch(/at .*\.ts:\d+/); // no stack trace
  });

  it("answers CORS preflights for the configured origin", async () => {
    const res = await call(
      httpApiEvent("OPTIONS", "/platform/profile", {
        headers: { Origin: "http://studio.test", "Access-Control-Request-Method": "GET" },
      }),
    );
    expect(res.statusCode).toBe(204);
    expect(res.headers?.["access-control-allow-origin"]).toBe("http://studio.test");
  });

  it("refuses the agent WebSocket on the HTTP API (agents use the WebSocket API)", async () => {
    const res = await call(restEvent("GET", "/agent/v1/connect", { headers: { Authorization: "Bearer nope" } }));
    expect(res.statusCode).toBe(401);
  });

  it("warns at cold start when SQL may run longer than a request can wait on Lambda", async () => {
    expect(rt.logs.join("\n")).toMatch(/SQL statement timeout is longer than a request can wait on Lambda/);
    const short = await createLambdaTestRuntime({ SUPAMANAGER_SQL_STATEMENT_TIMEOUT_SECONDS: "14" });
    try {
      expect(short.logs.join("\n")).not.toMatch(/SQL statement timeout/);
    } finally {
      await short.dispose();
    }
  });

  it("keeps the database pool small", () => {
    const stats = rt.deps.database.poolStats?.();
    expect(stats?.total).toBeLessThanOrEqual(LAMBDA_DEFAULT_POOL_MAX);
    expect(rt.deps.database.driver).toBe("postgres");
  });
});

describe("the scheduled sweep", () => {
  it("fails a running job whose lease ran out and drops RPC rows nobody waits for", async () => {
    const db = rt.deps.database.db;
    const hostId = `host_sweep_${Math.random().toString(36).slice(2, 8)}`;
    await db.insert(hosts).values({ id: hostId, name: "sweep", region: "local", credentialHash: `h-${hostId}` });
    const past = new Date(Date.now() - 60_000);
    await db.insert(jobs).values({
      id: `job_${hostId}`,
      hostId,
      kind: "noop",
      status: "running",
      leaseUntil: past,
    });
    await db.insert(agentRpcs).values({ id: `rpc_${hostId}`, hostId, createdAt: new Date(Date.now() - 3600_000) });
    const report = await sweep(rt.deps);
    expect(report.jobsLost).toBeGreaterThanOrEqual(1);
    const [job] = await db
      .select()
      .from(jobs)
      .where(eq(jobs.id, `job_${hostId}`));
    expect(job?.status).toBe("failed");
    expect(await db.select().from(agentRpcs).where(eq(agentRpcs.hostId, hostId))).toEqual([]);
  });
});

describe("cold start configuration", () => {
  const base = {
    NODE_ENV: "test",
    DATABASE_URL: "postgres://nobody@127.0.0.1:1/none",
    SUPAMANAGER_JWT_SECRET: TEST_JWT_SECRET,
    SUPAMANAGER_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    SUPAMANAGER_AGENT_CONNECTIONS_URL: "https://ws123.execute-api.eu-west-1.amazonaws.com/prod",
  };

  it("refuses to start without DATABASE_URL (no PGlite on Lambda)", async () => {
    const { DATABASE_URL: _, ...rest } = base;
    await expect(buildLambdaRuntime(rest)).rejects.toThrow(ConfigError);
    await expect(buildLambdaRuntime(rest)).rejects.toThrow(/DATABASE_URL must be set on Lambda/);
  });

  it("requires both secrets even outside production (no data directory to keep generated ones)", async () => {
    const { SUPAMANAGER_JWT_SECRET: _, ...rest } = base;
    await expect(buildLambdaRuntime({ ...rest, NODE_ENV: "development" })).rejects.toThrow(
      /SUPAMANAGER_JWT_SECRET must be set/,
    );
  });

  it("requires the @connections endpoint of the WebSocket API", async () => {
    const { SUPAMANAGER_AGENT_CONNECTIONS_URL: _, ...rest } = base;
    await expect(buildLambdaRuntime(rest)).rejects.toThrow(/SUPAMANAGER_AGENT_CONNECTIONS_URL/);
  });
});

describe("migrations as a deploy step", () => {
  it("migrates an empty database; running it again changes nothing", async () => {
    const name = `supamanager_t_${Date.now().toString(36)}_lambda_migrate`;
    await withAdminClient((c) => c.query(`create database "${name}"`));
    try {
      const url = urlForDatabase(name);
      await migrate({ DATABASE_URL: url });
      await migrate({ DATABASE_URL: url });
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>(
          "select count(*)::text as n from information_schema.columns where table_name = 'hosts' and column_name = 'connection_id'",
        );
        expect(rows[0]?.n).toBe("1");
      } finally {
        await client.end();
      }
    } finally {
      await withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`));
    }
  });

  it("refuses to migrate without DATABASE_URL", async () => {
    await expect(migrate({})).rejects.toThrow(/DATABASE_URL must be set on Lambda/);
  });
});
