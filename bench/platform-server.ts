/**
 * Child process for bench/platform-load.ts (and bench/workers-vs-node.ts): the real control plane
 * (bootstrap() as `npm start` runs it, on PostgreSQL when DATABASE_URL is set, else on PGlite in
 * SUPAMANAGER_DATA_DIR) and, on two more ports, a bare Hono route (the baseline) and the floor app
 * (bench/floor-app.ts) on the same database with a pool of the same size.
 * Prints one JSON line with the three URLs. With BENCH_CPU_PROFILE_DIR set, SIGUSR2 starts the CPU
 * profiler and SIGTERM writes the profile there before exiting.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import type { AddressInfo } from "node:net";
import type { PGlite } from "@electric-sql/pglite";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import pg from "pg";
import { parseEnv } from "../control-plane/src/config.js";
import { createNodeServer } from "../control-plane/src/entry/agent-socket.js";
import { bootstrap } from "../control-plane/src/entry/bootstrap.js";
import { createLogger } from "../control-plane/src/logger.js";
import { type FloorQuery, floorApp } from "./floor-app.js";

const env = parseEnv({ ...process.env, SUPAMANAGER_LOG_LEVEL: "silent", PORT: "0" });
const { app, deps } = await bootstrap(env, { logger: createLogger("silent") });

const bare = new Hono();
bare.get("/bare", (c) => c.json({ ok: true }));
// This process's CPU time so far (µs): the benchmark reads it around each target's window, so it
// can report CPU per request, which the machine's other load disturbs far less than req/s.
bare.get("/cpu", (c) => {
  const { user, system } = process.cpuUsage();
  return c.json({ us: user + system });
});

let floorQuery: FloorQuery;
let closeFloor = async () => {};
if (deps.config.databaseUrl) {
  const pool = new pg.Pool({ connectionString: deps.config.databaseUrl, max: deps.config.databasePoolMax });
  floorQuery = async (text, params) => (await pool.query(text, params)).rows;
  closeFloor = () => pool.end();
} else {
  // PGlite is one in-process database: the floor shares the control plane's instance.
  const client = (deps.database.db as unknown as { $client: PGlite }).$client;
  floorQuery = async (text, params) => (await client.query<Record<string, unknown>>(text, params)).rows;
}
const floor = floorApp(deps.config.jwtSecret, floorQuery);

const listen = (fetch: (r: Request) => Response | Promise<Response>) =>
  new Promise<string>((resolve) => {
    serve({ fetch, hostname: "127.0.0.1", port: 0 }, (info) => resolve(`http://127.0.0.1:${info.port}`));
  });

const { server } = createNodeServer(app); // the same server as `npm start`, agent WebSocket included
const controlPlane = await new Promise<string>((resolve) => {
  server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
});
const baseline = await listen(bare.fetch);
const floorUrl = await listen(floor.fetch);
process.stdout.write(`${JSON.stringify({ controlPlane, baseline, floor: floorUrl })}\n`);

// The profile covers what the benchmark drives after its setup (SIGUSR2), not the setup itself.
const profileDir = process.env.BENCH_CPU_PROFILE_DIR;
let profiler: Session | undefined;
process.on("SIGUSR2", () => {
  if (!profileDir || profiler) return;
  profiler = new Session();
  profiler.connect();
  void profiler.post("Profiler.enable").then(() => profiler?.post("Profiler.start"));
});
async function writeProfile(): Promise<void> {
  if (!profiler || !profileDir) return;
  const { profile } = await profiler.post("Profiler.stop");
  mkdirSync(profileDir, { recursive: true });
  writeFileSync(`${profileDir}/platform-server-${Date.now()}.cpuprofile`, JSON.stringify(profile));
}

process.once("SIGTERM", async () => {
  await writeProfile().catch((err: unknown) => console.error("writing the CPU profile failed", err));
  server.close();
  void closeFloor()
    .then(() => deps.database.close())
    .finally(() => process.exit(0));
});
