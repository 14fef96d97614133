/**
 * Child process for bench/platform-load.ts: the real control plane (bootstrap() as `npm start`
 * runs it, on PostgreSQL) and, on a second port, a bare Hono route for the baseline.
 * Prints one JSON line with both URLs.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { parseEnv } from "../control-plane/src/config.js";
import { createNodeServer } from "../control-plane/src/entry/agent-socket.js";
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

const { server } = createNodeServer(app); // the same server as `npm start`, agent WebSocket included
const controlPlane = await new Promise<string>((resolve) => {
  server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
});
const baseline = await listen(bare.fetch);
process.stdout.write(`${JSON.stringify({ controlPlane, baseline })}\n`);
