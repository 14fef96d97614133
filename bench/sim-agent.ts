/**
 * A protocol-level simulated host agent for benchmarks: joins with a join token, connects, says
 * hello, heartbeats, and answers every `apply` with `applied ok` and all required services
 * healthy — no Docker involved, so what is measured is the control plane.
 */
import { type Capacity, decodeServerFrame, encodeFrame, PROTOCOL_VERSION } from "@supamanager/shared";
import WebSocket from "ws";

export const SIM_CAPACITY: Capacity = {
  cpus: 8,
  memTotalBytes: 64 * 2 ** 30,
  memFreeBytes: 48 * 2 ** 30,
  memReservedBytes: 0,
  load1: 0.2,
};

export interface Enrolled {
  hostId: string;
  credential: string;
}

export async function joinHost(base: string, joinToken: string, hostname: string): Promise<Enrolled> {
  const res = await fetch(`${base}/agent/v1/join`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: joinToken, hostname }),
  });
  if (!res.ok) throw new Error(`join: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { host_id: string; credential: string };
  return { hostId: body.host_id, credential: body.credential };
}

export class SimAgent {
  private heartbeat: NodeJS.Timeout | undefined;
  /** Called when an apply arrives, with performance.now() at arrival. */
  onApply: ((ref: string, at: number) => void) | undefined;

  private constructor(
    readonly ws: WebSocket,
    readonly hostId: string,
  ) {}

  /**
   * Connect like the real agent does in a storm: on a refused or reset connection, retry with
   * jittered exponential backoff (0.25 s doubling to 8 s) until `timeoutMs`. `retries` counts them.
   */
  static async connect(base: string, host: Enrolled, timeoutMs = 120_000): Promise<SimAgent> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const agent = await SimAgent.connectOnce(base, host, Math.max(1000, deadline - Date.now()));
        SimAgent.retries += attempt;
        return agent;
      } catch (err) {
        if (Date.now() >= deadline) throw err;
        const cap = Math.min(8000, 250 * 2 ** attempt);
        await new Promise((r) => setTimeout(r, Math.random() * cap));
      }
    }
  }

  /** What every simulated host reports (a benchmark placing many projects on one host raises it). */
  static capacity: Capacity = SIM_CAPACITY;

  /** Heartbeats sent by every simulated agent of this process. */
  static heartbeatsSent = 0;

  /** Connection attempts that had to be retried, over every SimAgent.connect call. */
  static retries = 0;

  private static connectOnce(base: string, host: Enrolled, timeoutMs: number): Promise<SimAgent> {
    const ws = new WebSocket(`${base.replace(/^http/, "ws")}/agent/v1/connect`, {
      headers: { authorization: `Bearer ${host.credential}` },
    });
    const agent = new SimAgent(ws, host.hostId);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no welcome in time")), timeoutMs);
      ws.on("open", () =>
        ws.send(
          encodeFrame({
            v: PROTOCOL_VERSION,
            type: "hello",
            agentVersion: "bench",
            hostname: host.hostId,
            compose: "v2",
            capacity: SimAgent.capacity,
            inventory: [],
          }),
        ),
      );
      ws.on("message", (data: Buffer) => {
        const decoded = decodeServerFrame(data.toString());
        if (!decoded.ok) return;
        const frame = decoded.frame;
        if (frame.type === "welcome") {
          clearTimeout(timer);
          resolve(agent);
        } else if (frame.type === "apply") {
          agent.onApply?.(frame.ref, performance.now());
          ws.send(
            encodeFrame({
              v: PROTOCOL_VERSION,
              type: "applied",
              ref: frame.ref,
              version: frame.version,
              desiredState: frame.desiredState,
              ok: true,
            }),
          );
          const services = (frame.stack?.requiredServices ?? []).map((name) => ({
            name,
            state: "running" as const,
            health: "healthy" as const,
          }));
          ws.send(encodeFrame({ v: PROTOCOL_VERSION, type: "health", ref: frame.ref, services }));
        }
      });
      ws.on("error", (err) => {
        clearTimeout(timer);
        ws.terminate();
        reject(err);
      });
    });
  }

  /** Heartbeat every `seconds`, the first one after `delayMs` (to spread a fleet's beats). */
  startHeartbeats(seconds: number, delayMs = 0): void {
    const send = () => {
      if (this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(encodeFrame({ v: PROTOCOL_VERSION, type: "heartbeat", capacity: SimAgent.capacity }));
        SimAgent.heartbeatsSent++;
      }
    };
    this.heartbeat = setTimeout(() => {
      send();
      this.heartbeat = setInterval(send, seconds * 1000);
    }, delayMs);
  }

  close(): void {
    clearTimeout(this.heartbeat);
    clearInterval(this.heartbeat);
    this.ws.terminate();
  }
}
