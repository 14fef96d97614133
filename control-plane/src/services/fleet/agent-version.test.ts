import { PROTOCOL_VERSION } from "@supamanager/shared";
import { describe, expect, it } from "vitest";
import { agentStanding } from "./agent-version.js";

describe("where a host's agent stands (ADR 0040)", () => {
  const h = { version: "0.1.0", protocol: PROTOCOL_VERSION, wanted: undefined, failure: null };

  it("is current when it runs the wanted version, or nothing is wanted", () => {
    expect(agentStanding(h)).toEqual({ status: "current", behind: false, reason: null });
    expect(agentStanding({ ...h, wanted: "0.1.0" }).status).toBe("current");
  });

  it("is unknown before its first hello", () => {
    expect(agentStanding({ ...h, version: null, protocol: null, wanted: "0.2.0" }).status).toBe("unknown");
  });

  it("is behind with an update pending while another version runs", () => {
    expect(agentStanding({ ...h, wanted: "0.2.0" })).toEqual({
      status: "update_pending",
      behind: true,
      reason: "runs 0.1.0; 0.2.0 is wanted and installs when the agent next connects",
    });
  });

  it("says why an update to the wanted version failed, and ignores failures of other versions", () => {
    const failure = { version: "0.2.0", reason: "version 0.2.0 exited with code 1 before reconnecting" };
    expect(agentStanding({ ...h, wanted: "0.2.0", failure })).toEqual({
      status: "update_failed",
      behind: true,
      reason: "the update from 0.1.0 to 0.2.0 failed: version 0.2.0 exited with code 1 before reconnecting",
    });
    expect(agentStanding({ ...h, wanted: "0.2.1", failure }).status).toBe("update_pending");
  });

  it("is behind when it speaks the previous protocol", () => {
    const s = agentStanding({ ...h, protocol: PROTOCOL_VERSION - 1 });
    expect(s).toMatchObject({ status: "behind", behind: true });
    expect(s.reason).toMatch(/previous one/);
  });
});
