/**
 * Child process for bench/platform-load.ts: the real control plane (bootstrap() as `npm start`
 * runs it, on PostgreSQL) and, on a second port, a bare Hono route for the baseline.
 * Prints one JSON line with both URLs.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { parseEnv } from "../control-plane/src/config.js";
import { bootstrap } from "../control-plane/src/entry/bootstrap.js";
import { createLogger } from "../control-plane/src/logger.js";

const env = parseEnv({ ...process.env, SUPAMANAGER_LOG_LEVEL: "silent", PORT: "0" });
const { app } = await bootstrap(env, { logger: createLogger("silent") });

const bare = new Hono();
bare.get("/bare", (c) => c.json({ ok: true }));

const listen = (fetch: (r: Request) => Response | Promise<Response>) =>
  new Promise<string>((resolve) => {
    serve({ fetch, hostname: "127.0.0.1", port: 0 }, (info) => resolve(`http://127.0.0.1:${info.port}`));
  });

const [controlPlane, baseline] = await Promise.all([listen(app.fetch), listen(bare.fetch)]);
process.stdout.write(`${JSON.stringify({ controlPlane, baseline })}\n`);
