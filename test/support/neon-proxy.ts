import type { AddressInfo } from "node:net";
import { createConnection } from "node:net";
import { WebSocketServer } from "ws";

/**
 * The WebSocket-to-TCP proxy Neon runs in front of its PostgreSQL, for local PostgreSQL: the
 * Neon driver (also inside workerd) opens `ws://127.0.0.1:<port>/v1?address=<host>:<port>` and
 * speaks the PostgreSQL wire protocol in binary messages; this pipes them to that TCP address.
 * Only loopback targets are allowed.
 */
export interface NeonProxy {
  port: number;
  /** SUPAMANAGER_NEON_WS_PROXY for the Worker (see db/neon.ts). */
  wsProxy: string;
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

export async function startNeonProxy(): Promise<NeonProxy> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  const port = (wss.address() as AddressInfo).port;
  const proxy: NeonProxy = {
    port,
    wsProxy: `127.0.0.1:${port}/v1?address={host}:{port}`,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on("connection", (ws, req) => {
    const address = new URL(req.url ?? "/", "http://proxy").searchParams.get("address") ?? "";
    const m = /^(127\.0\.0\.1|localhost):(\d{1,5})$/.exec(address);
    if (!m) return ws.close(1008, "only loopback addresses");
    proxy.connections += 1;
    const tcp = createConnection({ host: "127.0.0.1", port: Number(m[2]) });
    tcp.on("data", (chunk) => ws.send(chunk));
    tcp.on("close", () => ws.close());
    tcp.on("error", () => ws.terminate());
    ws.on("message", (data) => tcp.write(data as Buffer));
    ws.on("close", () => tcp.end());
    ws.on("error", () => tcp.destroy());
  });
  return proxy;
}
