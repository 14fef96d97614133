import { describe, expect, it } from "vitest";
import { decodeAgentFrame, decodeServerFrame, encodeFrame } from "./codec.js";
import { type Apply, type Hello, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./frames.js";

const REF = "abcdefghijklmnopqrst";
const capacity = { cpus: 2, memTotalBytes: 8e9, memFreeBytes: 4e9, memReservedBytes: 0, load1: 0.1 };
const hello: Hello = {
  v: PROTOCOL_VERSION,
  type: "hello",
  agentVersion: "0.1.0",
  hostname: "host-a",
  compose: "v1",
  capacity,
  inventory: [{ ref: REF, appliedVersion: 3, state: "running" }],
};

describe("codec", () => {
  it("round-trips an agent frame", () => {
    const decoded = decodeAgentFrame(encodeFrame(hello));
    expect(decoded).toEqual({ ok: true, frame: hello });
  });

  it("round-trips a server frame with defaults filled in", () => {
    const apply: Apply = { v: 1, type: "apply", ref: REF, version: 4, desiredState: "paused", restartNonce: 0 };
    const decoded = decodeServerFrame(encodeFrame(apply));
    expect(decoded.ok && decoded.frame).toEqual(apply);
  });

  it.each([
    ["not JSON", "{nope", "bad_frame", /not valid JSON/],
    ["a JSON array", "[1,2]", "bad_frame", /object/],
    [
      "a newer protocol version",
      JSON.stringify({ ...hello, v: PROTOCOL_VERSION + 1 }),
      "unsupported_version",
      /newer than this peer's .*upgrade this peer \(the control plane first/,
    ],
    [
      "a protocol version older than N-1",
      JSON.stringify({ ...hello, v: 0 }),
      "unsupported_version",
      /version 0 is too old: .*install a newer supamanager-agent/,
    ],
    ["no protocol version", JSON.stringify({ ...hello, v: "1" }), "unsupported_version", /version 1 is not supported/],
    ["an unknown type", JSON.stringify({ v: 1, type: "teleport" }), "bad_frame", /invalid teleport frame/],
    [
      "a bad ref",
      JSON.stringify({ ...hello, inventory: [{ ref: "BAD", appliedVersion: 1, state: "running" }] }),
      "bad_frame",
      /ref/,
    ],
    [
      "a server frame sent by an agent",
      JSON.stringify({ v: 1, type: "welcome", hostId: "h", heartbeatIntervalMs: 1 }),
      "bad_frame",
      /welcome/,
    ],
  ])("answers %s with an error frame instead of throwing", (_name, raw, code, message) => {
    const result = decodeAgentFrame(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe(code);
      expect(result.error.message).toMatch(message);
      expect(result.error.v).toBe(PROTOCOL_VERSION);
    }
  });

  it("serves agents of this protocol version and the one before, and nothing older (ADR 0040)", () => {
    // As a control plane of version 3 would: it accepts 2 and 3.
    const accepted = { min: 2, max: 3 };
    expect(decodeAgentFrame(JSON.stringify({ ...hello, v: 3 }), accepted).ok).toBe(true);
    const previous = decodeAgentFrame(JSON.stringify({ ...hello, v: 2 }), accepted);
    expect(previous.ok && previous.frame.v).toBe(2);
    const old = decodeAgentFrame(JSON.stringify({ ...hello, v: 1 }), accepted);
    expect(!old.ok && old.error.message).toBe(
      "protocol version 1 is too old: this peer accepts 2 to 3; upgrade the older peer (an agent: install a newer supamanager-agent)",
    );
    // An agent only reads its own version: the control plane answers it in that one.
    const welcome = { type: "welcome", hostId: "h", heartbeatIntervalMs: 1 };
    expect(decodeServerFrame(JSON.stringify({ ...welcome, v: PROTOCOL_VERSION })).ok).toBe(true);
    expect(decodeServerFrame(JSON.stringify({ ...welcome, v: PROTOCOL_VERSION + 1 })).ok).toBe(false);
  });

  it("carries the wanted agent version in welcome and a failed update in hello, both optional", () => {
    const welcome = {
      v: PROTOCOL_VERSION,
      type: "welcome",
      hostId: "h",
      heartbeatIntervalMs: 1,
      agentUpdate: {
        version: "1.2.3",
        source: { kind: "url", url: "https://example.com/a.tgz", integrity: "sha256-AAAA" },
        deadlineSeconds: 120,
      },
    } as const;
    expect(decodeServerFrame(encodeFrame(welcome))).toEqual({ ok: true, frame: welcome });
    const bad = decodeServerFrame(
      JSON.stringify({
        ...welcome,
        agentUpdate: { ...welcome.agentUpdate, source: { kind: "url", url: "file:///x" } },
      }),
    );
    expect(!bad.ok && bad.error.code).toBe("bad_frame");
    const failed = {
      ...hello,
      updateFailure: { version: "1.2.3", reason: "did not reconnect", at: "2026-12-05T09:00:00Z" },
    };
    expect(decodeAgentFrame(encodeFrame(failed))).toEqual({ ok: true, frame: failed });
  });

  it("refuses an oversize frame before parsing it", () => {
    const huge = JSON.stringify({ ...hello, hostname: "x".repeat(MAX_FRAME_BYTES) });
    const result = decodeAgentFrame(huge);
    expect(!result.ok && result.error.code).toBe("too_large");
  });

  it("refuses stack file paths that escape the project directory", () => {
    const base = { v: 1, type: "apply", ref: REF, version: 1, desiredState: "running" };
    const stack = (path: string) => ({
      release: "local",
      composeFile: "{}",
      env: {},
      requiredServices: ["db"],
      files: [{ path, content: "x" }],
    });
    for (const bad of ["../etc/passwd", "/etc/passwd", "a/../../b", "a/.."]) {
      expect(decodeServerFrame(JSON.stringify({ ...base, stack: stack(bad) })).ok, bad).toBe(false);
    }
    expect(decodeServerFrame(JSON.stringify({ ...base, stack: stack("volumes/kong.yml") })).ok).toBe(true);
  });

  it("refuses env names that are not shell-safe", () => {
    const frame = {
      v: 1,
      type: "apply",
      ref: REF,
      version: 1,
      desiredState: "running",
      stack: { release: "local", composeFile: "{}", env: { "A;rm -rf": "x" }, requiredServices: [] },
    };
    expect(decodeServerFrame(JSON.stringify(frame)).ok).toBe(false);
  });

  it("encodeFrame refuses to send an invalid frame", () => {
    expect(() => encodeFrame({ ...hello, hostname: "" })).toThrow();
  });
});
