import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cleanupTmpDirs, ensureBuilt, freshDataDir, killAll, runToExit, startEntry } from "../support/process.js";
import { call, login, profile, signup, uniqueEmail } from "./http-client.js";

/** The built Node entry on its embedded PGlite database, as `npm start` runs it. */

beforeAll(() => ensureBuilt(), 180_000);
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  cleanupTmpDirs();
});

const STACK_LINE = /^\s+at\s/;

describe("embedded database (default)", () => {
  it("serves, keeps its data and its secrets across a SIGTERM restart", { timeout: 120_000 }, async () => {
    const dataDir = freshDataDir();
    const first = await startEntry({ SUPAMANAGER_DATA_DIR: dataDir });
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    expect((await call(first.url, "/health")).status).toBe(200);
    const ready = await call(first.url, "/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });

    const email = uniqueEmail("restart");
    await signup(first.url, email);
    const tokenBefore = await login(first.url, email);
    const before = await profile(first.url, tokenBefore);
    expect(before.primary_email).toBe(email);

    expect(await first.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(first.stdout.some((l) => l.includes('"msg":"shutting down"'))).toBe(true);

    const secretsFile = join(dataDir, "secrets.json");
    expect(existsSync(secretsFile)).toBe(true);
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const secretsBefore = readFileSync(secretsFile, "utf8");
    expect(existsSync(join(dataDir, "supamanager.lock"))).toBe(false);

    const second = await startEntry({ SUPAMANAGER_DATA_DIR: dataDir });
    // The same secrets are reused: the file is unchanged and a token signed before the restart still works.
    expect(readFileSync(secretsFile, "utf8")).toBe(secretsBefore);
    expect((await profile(second.url, tokenBefore)).id).toBe(before.id);
    // The account survived: a fresh login reads the same profile.
    const tokenAfter = await login(second.url, email);
    expect((await profile(second.url, tokenAfter)).id).toBe(before.id);
    expect(await second.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("refuses a second process on the same data directory", { timeout: 60_000 }, async () => {
    const dataDir = freshDataDir();
    const first = await startEntry({ SUPAMANAGER_DATA_DIR: dataDir });
    const second = await runToExit({ SUPAMANAGER_DATA_DIR: dataDir });
    expect(second.timedOut).toBe(false);
    expect(second.code).not.toBe(0);
    const message = second.stderr.join("\n");
    expect(message).toMatch(/data directory .* is in use/);
    expect(message).toContain(dataDir);
    expect(message).toContain(String(first.pid));
    expect(message).toContain("DATABASE_URL");
    expect(second.stderr.some((l) => STACK_LINE.test(l))).toBe(false);
    // The first one is unharmed.
    expect((await call(first.url, "/ready")).status).toBe(200);
    expect((await first.stop()).code).toBe(0);
  });

  it("creates the configured admin once, idempotently across a restart", { timeout: 120_000 }, async () => {
    const dataDir = freshDataDir();
    const env = {
      SUPAMANAGER_DATA_DIR: dataDir,
      SUPAMANAGER_ADMIN_EMAIL: "Admin@Example.Test",
      SUPAMANAGER_ADMIN_PASSWORD: "admin password 123",
    };
    const first = await startEntry(env);
    expect(first.stdout.some((l) => l.includes("created the configured admin account"))).toBe(true);
    const id = (await profile(first.url, await login(first.url, "admin@example.test", "admin password 123"))).id;
    expect((await first.stop()).code).toBe(0);

    const second = await startEntry(env);
    const token = await login(second.url, "admin@example.test", "admin password 123");
    expect((await profile(second.url, token)).id).toBe(id);
    expect(second.stdout.some((l) => l.includes("created the configured admin account"))).toBe(false);
    const trouble = second.output.filter((l) => /duplicate|already exists|"level":"error"/i.test(l));
    expect(trouble).toEqual([]);
    // The admin is the instance admin, so open sign-up stays closed for others.
    const res = await call(second.url, "/platform/signup", {
      method: "POST",
      json: { email: uniqueEmail("late"), password: "correct horse battery" },
    });
    expect(res.status).toBe(403);
    expect((await second.stop()).code).toBe(0);
  });
});

describe("start-up failures", () => {
  it.each([
    ["PORT=abc", { PORT: "abc" }, "PORT"],
    ["PORT out of range", { PORT: "70000" }, "PORT"],
    ["a short JWT secret", { SUPAMANAGER_JWT_SECRET: "short" }, "SUPAMANAGER_JWT_SECRET"],
    ["admin email without password", { SUPAMANAGER_ADMIN_EMAIL: "a@example.test" }, "SUPAMANAGER_ADMIN_PASSWORD"],
  ])("%s: exits non-zero naming the variable, without a stack trace", { timeout: 30_000 }, async (_n, env, name) => {
    const r = await runToExit({ SUPAMANAGER_DATA_DIR: freshDataDir(), ...env });
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    const message = r.stderr.join("\n");
    expect(message).toContain("Invalid configuration");
    expect(message).toContain(name);
    expect(r.stderr.some((l) => STACK_LINE.test(l))).toBe(false);
  });

  it("NODE_ENV=production without SUPAMANAGER_JWT_SECRET exits naming it", { timeout: 30_000 }, async () => {
    const dataDir = freshDataDir();
    const r = await runToExit({
      NODE_ENV: "production",
      SUPAMANAGER_DATA_DIR: dataDir,
      SUPAMANAGER_ENCRYPTION_KEY: "ab".repeat(32),
    });
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    const message = r.stderr.join("\n");
    expect(message).toContain("SUPAMANAGER_JWT_SECRET");
    expect(message).not.toContain("SUPAMANAGER_ENCRYPTION_KEY");
    expect(r.stderr.some((l) => STACK_LINE.test(l))).toBe(false);
    // Production never invents secrets on disk.
    expect(existsSync(join(dataDir, "secrets.json"))).toBe(false);
  });
});
