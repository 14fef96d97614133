import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

describe("logger", () => {
  it("writes one JSON object per line with bindings and redacts secret-looking fields", () => {
    const lines: string[] = [];
    const log = createLogger("info", (l) => lines.push(l)).child({ requestId: "r1" });
    log.info("hello", { password: "p", db_pass: "d", authorization: "Bearer x", route: "/x" });
    log.debug("hidden");
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0] as string);
    expect(rec).toMatchObject({ level: "info", msg: "hello", requestId: "r1", route: "/x" });
    expect(rec.password).toBe("[redacted]");
    expect(rec.db_pass).toBe("[redacted]");
    expect(rec.authorization).toBe("[redacted]");
  });

  it("serialises errors with their message", () => {
    const lines: string[] = [];
    createLogger("debug", (l) => lines.push(l)).error("boom", { err: new Error("bad thing") });
    expect(JSON.parse(lines[0] as string).err.message).toBe("bad thing");
  });

  it("silent writes nothing", () => {
    const lines: string[] = [];
    createLogger("silent", (l) => lines.push(l)).error("x");
    expect(lines).toEqual([]);
  });
});
