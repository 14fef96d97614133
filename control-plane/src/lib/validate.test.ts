import { describe, expect, it } from "vitest";
import { z } from "zod";
import { shapeBuilt } from "./validate.js";

describe("shapeBuilt", () => {
  const Item = z.object({ ref: z.string(), count: z.number() });

  it("parses in tests and development, so a builder drifting from the contract fails there", () => {
    const drifted = { ref: "a", count: "1" } as unknown as z.output<typeof Item>;
    expect(() => shapeBuilt("test", Item, drifted)).toThrow();
    expect(() => shapeBuilt("development", Item, drifted)).toThrow();
    expect(shapeBuilt("test", Item, { ref: "a", count: 1 })).toEqual({ ref: "a", count: 1 });
  });

  it("passes the built value through in production", () => {
    const built = { ref: "a", count: 1 };
    expect(shapeBuilt("production", Item, built)).toBe(built);
  });
});
