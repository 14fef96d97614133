/**
 * A protocol-level host agent for the CLI's tests (no Docker): joins with a join token, connects,
 * says hello, heartbeats, and answers applies as told — "ok" (applied and every required service
 * healthy), "fail" (applied with ok: false and an error), or "silent" (never answers). Outside
 * "silent" it answers the reserved `docker-logs` rpc with two fixed lines, and `upgrade` jobs:
 * reports a few steps, then answers with `upgrades(ref)`'s outcome (default "upgraded").
 */
import { decodeServerFrame, encodeFrame, PROTOCOL_VERSION } from "@supamanager/shared";
import WebSocket from "ws";
import { SIM_CAPACITY } from "../../../bench/sim-agent.js";

export type AgentMode = "ok" | "fail" | "silent";

/** How this host's `upgrade` jobs end: on the target release, or rolled back to the old one. */
export type UpgradeOutcome = "upgraded" | "rolled_back";

export interface AgentOptions {
  upgrades?: (ref: string) => UpgradeOutcome;
}

export interface TestAgent {
  hostId: string;
  close(): void;
}

export async function startAgent(
  base: string,
  joinToken: string,
  hostname: string,
  mode: AgentMode,
  options: AgentOptions = {},
): Promise<TestAgent> {
  const res = await fetch(`${base}/agent/v1/join`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: joinToken, hostname }),
  });
  if (!res.ok) throw new Error(`join: ${res.status} ${await res.text()}`);
  const { host_id: hostId, credential } = (await res.json()) as { host_id: string; credential: string };
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/agent/v1/connect`, {
    headers: { authorization: `Bearer ${credential}` },
  });
  const send = (frame: Parameters<typeof encodeFrame>[0]) => ws.send(encodeFrame(frame));
  let beat: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no welcome in time")), 10_000);
    ws.on("open", () =>
      send({
        v: PROTOCOL_VERSION,
        type: "hello",
        agentVersion: "cli-test",
        hostname,
        compose: "v2",
        capacity: SIM_CAPACITY,
        inventory: [],
      }),
    );
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on("message", (data: Buffer) => {
      const decoded = decodeServerFrame(data.toString());
      if (!decoded.ok) return;
      const frame = decoded.frame;
      if (frame.type === "welcome") {
        clearTimeout(timer);
        beat = setInterval(() => send({ v: PROTOCOL_VERSION, type: "heartbeat", capacity: SIM_CAPACITY }), 5_000);
        resolve();
      } else if (frame.type === "rpc" && frame.service === "docker-logs" && mode !== "silent") {
        // The reserved docker-logs rpc: two fixed lines, echoing the query so tests can check it.
        send({
          v: PROTOCOL_VERSION,
          type: "rpc_result",
          id: frame.id,
          status: 200,
          contentType: "application/json",
          body: {
            lines: [
              { service: "db", stream: "stdout", text: `asked ${frame.path}`, timestamp: "2026-01-01T00:00:00Z" },
              { service: "db", stream: "stderr", text: "database system is ready to accept connections" },
            ],
          },
        });
      } else if (frame.type === "job" && frame.kind === "upgrade" && mode !== "silent") {
        const ref = frame.ref ?? "";
        const outcome = options.upgrades?.(ref) ?? "upgraded";
        void (async () => {
          // The steps a real agent reports (POST /agent/v1/jobs/{id}/progress), then the result.
          for (const step of ["recording_facts", "stopping", "starting", "health_check"]) {
            await fetch(`${base}/agent/v1/jobs/${frame.jobId}/progress`, {
              method: "POST",
              headers: { "content-type": "application/json", authorization: `Bearer ${credential}` },
              body: JSON.stringify({ step }),
            });
          }
          send({
            v: PROTOCOL_VERSION,
            type: "job_result",
            jobId: frame.jobId,
            ok: true,
            result:
              outcome === "upgraded"
                ? { outcome }
                : { outcome, failedStep: "health_check", error: "simulated: the new release did not become healthy" },
          });
        })();
      } else if (frame.type === "apply" && mode !== "silent") {
        const ok = mode === "ok";
        send({
          v: PROTOCOL_VERSION,
          type: "applied",
          ref: frame.ref,
          version: frame.version,
          desiredState: frame.desiredState,
          ok,
          ...(ok ? {} : { error: "simulated failure: image pull refused" }),
        });
        if (ok) {
          const services = (frame.stack?.requiredServices ?? []).map((name) => ({
            name,
            state: "running" as const,
            health: "healthy" as const,
          }));
          send({ v: PROTOCOL_VERSION, type: "health", ref: frame.ref, services });
        }
      }
    });
  });
  return {
    hostId,
    close: () => {
      clearInterval(beat);
      ws.terminate();
    },
  };
}
