import { describe, expect, it } from "vitest";
import { beyondRetention } from "./maintenance.js";
import { joinKey, s3Failure } from "./s3.js";

const DAY = 24 * 3600 * 1000;
const now = Date.UTC(2026, 10, 25);
const rows = [0, 1, 2, 3].map((i) => ({ id: 10 - i, createdAt: new Date(now - i * DAY - 1000) }));

describe("beyondRetention", () => {
  it("keeps the newest N by count", () => {
    expect(beyondRetention(rows, { retentionCount: 2, retentionDays: null }, now)).toEqual([8, 7]);
  });
  it("removes what is older than the days", () => {
    expect(beyondRetention(rows, { retentionCount: null, retentionDays: 2 }, now)).toEqual([8, 7]);
    expect(beyondRetention(rows, { retentionCount: null, retentionDays: 1 }, now)).toEqual([9, 8, 7]);
  });
  it("applies both limits (whichever removes more)", () => {
    expect(beyondRetention(rows, { retentionCount: 3, retentionDays: 1 }, now)).toEqual([9, 8, 7]);
    expect(beyondRetention(rows, { retentionCount: 1, retentionDays: 30 }, now)).toEqual([9, 8, 7]);
  });
  it("keeps everything without a policy", () => {
    expect(beyondRetention(rows, { retentionCount: null, retentionDays: null }, now)).toEqual([]);
  });
});

describe("s3 helpers", () => {
  it("joins key segments without empty ones", () => {
    expect(joinKey("", "abc", "1", "db.dump")).toBe("abc/1/db.dump");
    expect(joinKey("a/b/", "/c")).toBe("a/b/c");
  });
  it("keeps only S3's error code and status from an SDK error", () => {
    const f = s3Failure("PutObject", {
      name: "SignatureDoesNotMatch",
      message: "secret details that must not travel",
      $metadata: { httpStatusCode: 403 },
    });
    expect(f.message).toBe("PutObject failed: SignatureDoesNotMatch (HTTP 403)");
    expect(s3Failure("HeadObject", { code: "ECONNREFUSED" }).code).toBe("ECONNREFUSED");
    expect(s3Failure("HeadObject", { name: "has spaces and <xml>" }).code).toBe("UnknownError");
  });
});
