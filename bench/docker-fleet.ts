/**
 * A real fleet for Docker-backed benchmarks: the built control plane on a throwaway PostgreSQL
 * database (production mode, the local release's images) and one built host agent enrolled in
 * `bench-1`, online, with an organization to create projects in.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentProcess, ensureAgentBuilt, joinAgent, runAgent } from "../test/support/agent-process.js";
import { ensureBuilt, REPO_ROOT, startEntry } from "../test/support/process.js";
import { adminQuery, api, databaseUrl, until } from "./support.js";

export const BENCH_REGION = "bench-1";

export interface BenchFleet {
  url: string;
  /** The instance admin's access token. */
  token: string;
  orgSlug: string;
  /** The agent's data directory (projects/<ref>/ holds each rendered stack). */
  dataDir: string;
  /** Create a project in the bench region and wait (≤ 180 s) until it is ACTIVE_HEALTHY. */
  createHealthyProject(name: string, dbPass: string): Promise<string>;
  stop(): Promise<void>;
}

/** `env` adds to (or overrides) the control plane's environment. */
export async function startBenchFleet(
  name: string,
  portRange: string,
  env: Record<string, string> = {},
): Promise<BenchFleet> {
  ensureBuilt();
  ensureAgentBuilt();
  const admin = { email: `${name}-admin@example.test`, password: `${name}-admin-password` };
  const dbName = `supamanager_${name}_${Date.now().toString(36)}`;
  await adminQuery(`create database "${dbName}"`);
  const dataDir = mkdtempSync(join(tmpdir(), `sm-${name}-agent-`));
  let agent: AgentProcess | undefined;
  const cp = await startEntry({
    NODE_ENV: "production",
    DATABASE_URL: databaseUrl(dbName),
    SUPAMANAGER_JWT_SECRET: `${name}-jwt-secret-0123456789abcdef0123456789`,
    SUPAMANAGER_ENCRYPTION_KEY: "5e".repeat(32),
    SUPAMANAGER_ADMIN_EMAIL: admin.email,
    SUPAMANAGER_ADMIN_PASSWORD: admin.password,
    SUPAMANAGER_LOCAL_IMAGES_FILE: join(REPO_ROOT, "images/manifest.local.json"),
    SUPAMANAGER_PORT_RANGE: portRange,
    SUPAMANAGER_RELEASE: "local",
    SUPAMANAGER_LOG_LEVEL: "warn",
    ...env,
  });
  const stop = async () => {
    await agent?.stop("SIGTERM");
    await cp.stop("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
    await adminQuery(`drop database if exists "${dbName}" with (force)`);
  };
  try {
    const { access_token: token } = await api<{ access_token: string }>(cp.url, "/auth/v1/token?grant_type=password", {
      method: "POST",
      body: admin,
    });
    const joinToken = await api<{ token: string }>(cp.url, "/platform/fleet/join-tokens", {
      method: "POST",
      token,
      body: { region: BENCH_REGION },
    });
    const joined = await joinAgent({ url: cp.url, token: joinToken.token, dataDir });
    if (joined.code !== 0) throw new Error(`agent join failed: ${joined.output}`);
    agent = runAgent(dataDir);
    await until("the host to be online", 30_000, async () => {
      const hosts = await api<{ status: string }[]>(cp.url, "/platform/fleet/hosts", { token });
      return hosts.some((h) => h.status === "online");
    });
    const org = await api<{ slug: string }>(cp.url, "/platform/organizations", {
      method: "POST",
      token,
      body: { name, tier: "tier_free" },
    });
    return {
      url: cp.url,
      token,
      orgSlug: org.slug,
      dataDir,
      stop,
      async createHealthyProject(projectName, dbPass) {
        const { ref } = await api<{ ref: string }>(cp.url, "/platform/projects", {
          method: "POST",
          token,
          body: { name: projectName, organization_slug: org.slug, db_pass: dbPass, db_region: BENCH_REGION },
        });
        await until(`${ref} ACTIVE_HEALTHY`, 180_000, async () => {
          const { status } = await api<{ status: string }>(cp.url, `/platform/projects/${ref}/status`, { token });
          if (status === "INIT_FAILED") {
            const detail = await api<{ status_reason?: string }>(cp.url, `/platform/projects/${ref}`, { token });
            throw new Error(`${ref} failed to start: ${detail.status_reason ?? "no reason given"}`);
          }
          return status === "ACTIVE_HEALTHY";
        });
        return ref;
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
