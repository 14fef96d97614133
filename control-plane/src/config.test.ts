import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildConfig, ConfigError, parseEnv } from "./config.js";
import { resolveSecrets } from "./entry/secrets-file.js";

describe("parseEnv", () => {
  it("applies documented defaults", () => {
    const env = parseEnv({});
    expect(env).toMatchObject({
      NODE_ENV: "development",
      PORT: 8080,
      SUPAMANAGER_DATA_DIR: "./.data",
      SUPAMANAGER_ALLOW_SIGNUP: false,
      SUPAMANAGER_CORS_ORIGINS: [],
      SUPAMANAGER_HOST_OFFLINE_SECONDS: 45,
      SUPAMANAGER_RELEASE: "supabase-v0.8.2",
      SUPAMANAGER_PORT_RANGE: [28000, 28999],
      SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: "deny",
    });
    expect(parseEnv({ SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: "allow" }).SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS).toBe(
      "allow",
    );
  });

  it("treats empty strings as unset", () => {
    expect(parseEnv({ PORT: "", DATABASE_URL: "" }).DATABASE_URL).toBeUndefined();
  });

  it.each([
    [{ PORT: "abc" }, /PORT/],
    [{ SUPAMANAGER_ALLOW_SIGNUP: "maybe" }, /SUPAMANAGER_ALLOW_SIGNUP/],
    [{ SUPAMANAGER_JWT_SECRET: "short" }, /SUPAMANAGER_JWT_SECRET/],
    [{ SUPAMANAGER_ADMIN_EMAIL: "admin@example.test" }, /must be set together/],
    [{ SUPAMANAGER_ACCESS_TOKEN_TTL_SECONDS: "7200" }, /SUPAMANAGER_ACCESS_TOKEN_TTL_SECONDS/],
    [{ SUPAMANAGER_PORT_RANGE: "100-200" }, /SUPAMANAGER_PORT_RANGE/],
    [{ SUPAMANAGER_PORT_RANGE: "60000-50000" }, /SUPAMANAGER_PORT_RANGE/],
    [{ SUPAMANAGER_RELEASE: "Not A Name" }, /SUPAMANAGER_RELEASE/],
    [{ SUPAMANAGER_HOST_OFFLINE_SECONDS: "0" }, /SUPAMANAGER_HOST_OFFLINE_SECONDS/],
    [{ SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: "yes" }, /SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS/],
  ])("names the variable in error %#", (env, message) => {
    expect(() => parseEnv(env)).toThrow(ConfigError);
    expect(() => parseEnv(env)).toThrow(message);
  });

  it("parses lists", () => {
    expect(parseEnv({ SUPAMANAGER_CORS_ORIGINS: " http://a , http://b ,," }).SUPAMANAGER_CORS_ORIGINS).toEqual([
      "http://a",
      "http://b",
    ]);
  });
});

describe("the agent version hosts should run (ADR 0040)", () => {
  const secrets = { jwtSecret: "x".repeat(32), encryptionKey: "1e".repeat(32) };
  const update = (env: Record<string, string>) => buildConfig(parseEnv(env), secrets).fleet.agentUpdate;

  it("is unset by default: agents are never told to update", () => {
    expect(update({})).toBeUndefined();
  });

  it("comes from the npm registry or an operator's URL with its checksum", () => {
    expect(update({ SUPAMANAGER_AGENT_VERSION: "0.2.0", SUPAMANAGER_AGENT_PACKAGE: "@acme/agent" })).toEqual({
      version: "0.2.0",
      source: { kind: "npm", registry: "https://registry.npmjs.org", package: "@acme/agent" },
      deadlineSeconds: 120,
    });
    const sha256 = "ab".repeat(32);
    expect(
      update({
        SUPAMANAGER_AGENT_VERSION: "0.2.0",
        SUPAMANAGER_AGENT_URL: "https://dl.example.com/agent-0.2.0.tgz",
        SUPAMANAGER_AGENT_SHA256: sha256,
        SUPAMANAGER_AGENT_UPDATE_DEADLINE_SECONDS: "30",
      }),
    ).toEqual({
      version: "0.2.0",
      source: {
        kind: "url",
        url: "https://dl.example.com/agent-0.2.0.tgz",
        integrity: `sha256-${Buffer.from(sha256, "hex").toString("base64")}`,
      },
      deadlineSeconds: 30,
    });
  });

  it.each([
    [{ SUPAMANAGER_AGENT_VERSION: "0.2.0" }, /needs SUPAMANAGER_AGENT_PACKAGE .* or SUPAMANAGER_AGENT_URL/],
    [{ SUPAMANAGER_AGENT_PACKAGE: "agent" }, /need SUPAMANAGER_AGENT_VERSION/],
    [{ SUPAMANAGER_AGENT_VERSION: "0.2.0", SUPAMANAGER_AGENT_URL: "https://x.example/a.tgz" }, /needs its checksum/],
    [
      {
        SUPAMANAGER_AGENT_VERSION: "0.2.0",
        SUPAMANAGER_AGENT_PACKAGE: "a",
        SUPAMANAGER_AGENT_URL: "https://x.example/a.tgz",
      },
      /not both/,
    ],
    [
      { SUPAMANAGER_AGENT_VERSION: "0.2.0", SUPAMANAGER_AGENT_PACKAGE: "a", SUPAMANAGER_AGENT_SHA256: "ab".repeat(32) },
      /go with SUPAMANAGER_AGENT_URL/,
    ],
    [
      { SUPAMANAGER_AGENT_VERSION: "latest", SUPAMANAGER_AGENT_PACKAGE: "a" },
      /SUPAMANAGER_AGENT_VERSION: must be a version/,
    ],
  ])("refuses an incomplete or contradictory setting %#", (env, message) => {
    expect(() => parseEnv(env)).toThrow(ConfigError);
    expect(() => parseEnv(env)).toThrow(message);
  });
});

describe("resolveSecrets", () => {
  it("generates secrets once into the data directory with mode 0600 and reuses them", () => {
    const dir = mkdtempSync(join(tmpdir(), "sm-secrets-"));
    const first = resolveSecrets(parseEnv({ SUPAMANAGER_DATA_DIR: dir }));
    const second = resolveSecrets(parseEnv({ SUPAMANAGER_DATA_DIR: dir }));
    expect(first.secrets).toEqual(second.secrets);
    const file = join(dir, "secrets.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, "utf8")).jwtSecret).toBe(first.secrets.jwtSecret);
    const other = resolveSecrets(parseEnv({ SUPAMANAGER_DATA_DIR: mkdtempSync(join(tmpdir(), "sm-secrets-")) }));
    expect(other.secrets.jwtSecret).not.toBe(first.secrets.jwtSecret);
  });

  it("in production a missing secret stops start-up naming the variable", () => {
    expect(() =>
      resolveSecrets(parseEnv({ NODE_ENV: "production", SUPAMANAGER_ENCRYPTION_KEY: "k".repeat(64) })),
    ).toThrow(/SUPAMANAGER_JWT_SECRET/);
    expect(() => resolveSecrets(parseEnv({ NODE_ENV: "production", SUPAMANAGER_JWT_SECRET: "j".repeat(40) }))).toThrow(
      /SUPAMANAGER_ENCRYPTION_KEY/,
    );
  });

  it("uses the environment's secrets when both are set, writing nothing", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "sm-secrets-")), "never-created");
    const out = resolveSecrets(
      parseEnv({
        SUPAMANAGER_DATA_DIR: dir,
        SUPAMANAGER_JWT_SECRET: "j".repeat(40),
        SUPAMANAGER_ENCRYPTION_KEY: "k".repeat(64),
      }),
    );
    expect(out.generatedFile).toBeUndefined();
    expect(() => statSync(dir)).toThrow();
  });
});
