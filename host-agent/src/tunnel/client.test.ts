import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { createLogger } from "../log.js";
import { TunnelClient, tunnelUrl } from "./client.js";

const servers: WebSocketServer[] = [];
const clients: TunnelClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A port nothing listens on yet (taken from a server that is closed again). */
async function freePort(): Promise<number> {
  const probe = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => probe.once("listening", r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

describe("TunnelClient", () => {
  it("derives the data connection's URL from the control plane's", () => {
    expect(tunnelUrl("https://cp.example.com/base/")).toBe("wss://cp.example.com/base/agent/v1/tunnel");
    expect(tunnelUrl("http://10.0.0.2:8080")).toBe("ws://10.0.0.2:8080/agent/v1/tunnel");
  });

  it("redials at once when start() is called again while it waits out its backoff", async () => {
    const port = await freePort();
    const logs: string[] = [];
    const client = new TunnelClient({
      url: `http://127.0.0.1:${port}`,
      credential: "test",
      logger: createLogger({ level: "debug", write: (l) => logs.push(l) }),
      gateway: async () => null,
      // A first retry some time away and every later one a minute: only a nudge brings it back soon.
      backoff: { baseMs: 60_000, capMs: 60_000, random: () => 0.99 },
    });
    clients.push(client);
    client.start(); // refused: nothing listens yet
    await expect
      .poll(() => logs.some((l) => l.includes("tunnel disconnected; reconnecting")), { timeout: 5_000 })
      .toBe(true);
    const server = new WebSocketServer({ host: "127.0.0.1", port });
    servers.push(server);
    const connected = new Promise((r) => server.once("connection", r));
    await new Promise((r) => server.once("listening", r));
    const nudgedAt = Date.now();
    client.start(); // e.g. the control connection's welcome
    await connected;
    expect(Date.now() - nudgedAt).toBeLessThan(2_000);
    await expect.poll(() => client.isOpen, { timeout: 2_000 }).toBe(true);
    expect(client.connections).toBe(1);
    // While connected, start() again changes nothing.
    client.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(client.connections).toBe(1);
  });
});
