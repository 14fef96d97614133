import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConnectionsStandIn,
  connectionId,
  httpApiEvent,
  restEvent,
  webSocketEvent,
} from "../../control-plane/src/test-support/apigw.js";
import { TEST_ENCRYPTION_KEY, TEST_JWT_SECRET } from "../../control-plane/src/test-support/harness.js";
import { urlForDatabase, withAdminClient } from "../support/pg.js";
import { REPO_ROOT } from "../support/process.js";

/**
 * The artifact that is deployed: `npm run lambda:build` bundles the Lambda entry into one ES
 * module with the migrations beside it. A plain `node` process (as Lambda's runtime does) imports
 * it and calls its exported handlers with the environment Lambda would give it.
 */

const BUNDLE = join(REPO_ROOT, "control-plane/dist/lambda/index.mjs");
const LOCK = join(tmpdir(), "supamanager-lambda-build.lock");

let standIn: ConnectionsStandIn;
let database: string;

beforeAll(async () => {
  execFileSync("flock", [LOCK, "node", "scripts/build-lambda.mjs"], {
    cwd: REPO_ROOT,
    stdio: "pipe",
    timeout: 120_000,
  });
  standIn = await ConnectionsStandIn.start();
  // An EMPTY database: the bundle's migrate handler creates the schema.
  database = `supamanager_t_${Date.now().toString(36)}_bundle`;
  await withAdminClient((c) => c.query(`create database "${database}"`));
}, 180_000);
afterAll(async () => {
  await standIn?.close();
  if (database) await withAdminClient((c) => c.query(`drop database if exists "${database}" with (force)`));
});

type Call = [handler: string, event?: unknown];

/** Import the bundle in a fresh process, make the calls in order, return their results and stderr. */
async function invoke(env: Record<string, string>, calls: Call[]): Promise<{ results: unknown[]; stderr: string }> {
  const script = `
    const chunks = [];
    for await (const c of process.stdin) chunks.push(c);
    const calls = JSON.parse(Buffer.concat(chunks).toString());
    const m = await import(${JSON.stringify(BUNDLE)});
    const results = [];
    for (const [name, event] of calls) {
      try { results.push(await m[name](event)); } catch (err) { results.push({ threw: String(err && err.message) }); }
    }
    process.stdout.write("\\nRESULTS " + JSON.stringify(results) + "\\n");
    process.exit(0);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    env: { PATH: process.env.PATH ?? "", NODE_ENV: "production", SUPAMANAGER_LOG_LEVEL: "warn", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdin.end(JSON.stringify(calls));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  expect(code, stderr).toBe(0);
  // The handlers log JSON lines on stdout too; the results are the marked line.
  const line = stdout.split("\n").find((l) => l.startsWith("RESULTS "));
  if (!line) throw new Error(`no results:\n${stdout}\n${stderr}`);
  return { results: JSON.parse(line.slice("RESULTS ".length)) as unknown[], stderr };
}

describe("the Lambda bundle", () => {
  it("has its migrations beside it", () => {
    expect(existsSync(join(REPO_ROOT, "control-plane/dist/lambda/migrations/meta/_journal.json"))).toBe(true);
  });

  it("migrates, serves HTTP (v1 and v2) and refuses a bad agent credential", async () => {
    const env = {
      DATABASE_URL: urlForDatabase(database),
      SUPAMANAGER_JWT_SECRET: TEST_JWT_SECRET,
      SUPAMANAGER_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      SUPAMANAGER_AGENT_CONNECTIONS_URL: standIn.url,
      AWS_REGION: "eu-west-1",
      AWS_ACCESS_KEY_ID: "AKIDTEST",
      AWS_SECRET_ACCESS_KEY: "test-secret",
    };
    const email = "bundle@example.test";
    const { results } = await invoke(env, [
      ["migrateHandler"],
      ["handler", httpApiEvent("GET", "/ready")],
      ["handler", restEvent("POST", "/platform/signup", { body: { email, password: "correct horse battery" } })],
      ["handler", httpApiEvent("GET", "/nowhere")],
      ["agentHandler", webSocketEvent("$connect", connectionId(), { headers: { Authorization: "Bearer smh_nope" } })],
      ["sweepHandler"],
    ]);
    const [migrated, ready, signup, missing, refused, swept] = results as Record<string, unknown>[];
    expect(migrated).toMatchObject({ ok: true });
    expect(String(migrated?.migrationsFolder)).toMatch(/dist\/lambda\/migrations$/);
    expect(ready).toMatchObject({ statusCode: 200, body: JSON.stringify({ status: "ready" }) });
    expect(signup?.statusCode, String(signup?.body)).toBe(201);
    expect(missing?.statusCode).toBe(404);
    expect(refused?.statusCode).toBe(401);
    expect(swept).toMatchObject({ ok: true, jobsLost: 0 });
  });

  it("answers 503 and logs the variable's name when the configuration is incomplete", async () => {
    const { results, stderr } = await invoke(
      { SUPAMANAGER_AGENT_CONNECTIONS_URL: standIn.url, SUPAMANAGER_JWT_SECRET: TEST_JWT_SECRET },
      [
        ["handler", httpApiEvent("GET", "/health")],
        ["agentHandler", webSocketEvent("$connect", connectionId())],
      ],
    );
    expect(results).toMatchObject([{ statusCode: 503 }, { statusCode: 503 }]);
    expect(JSON.parse((results[0] as { body: string }).body)).toMatchObject({ code: "unavailable" });
    expect(stderr).toMatch(/DATABASE_URL must be set on Lambda/);
    expect(stderr).not.toMatch(/at .*\.(ts|mjs):\d+/); // one line, no stack
  });
});
