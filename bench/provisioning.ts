/**
 * Provisioning overhead (fleet issue): create → ACTIVE_HEALTHY through SupaManager (API → control
 * plane → agent → docker-compose → health reported back) against bringing up the SAME rendered
 * stack by hand with docker-compose and waiting until every container is healthy, in one run.
 *
 * Each round: create a project through the API and time it to ACTIVE_HEALTHY; copy the stack the
 * agent wrote; delete the project (→ REMOVED); then `docker-compose up -d` the copy and poll
 * `docker ps` until all its containers are healthy (v1 has no `--wait`), and `down -v` it.
 * Needs Docker, the local images (`npm run images:test`) and PostgreSQL on 127.0.0.1:5432.
 *
 * Usage: npm run bench:provisioning [-- --rounds 3]
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { ensureAgentBuilt, joinAgent, runAgent } from "../test/support/agent-process.js";
import { ensureBuilt, REPO_ROOT, startEntry } from "../test/support/process.js";
import { ADMIN_DATABASE_URL, adminQuery, api, machineLine, median, until } from "./support.js";

const run = promisify(execFile);
const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" } } });
const rounds = Number(values.rounds);
const ADMIN = { email: "prov-admin@example.test", password: "prov-admin-password" };

async function main() {
  ensureBuilt();
  ensureAgentBuilt();
  const dbName = `supamanager_prov_${Date.now().toString(36)}`;
  await adminQuery(`create database "${dbName}"`);
  const dbUrl = new URL(ADMIN_DATABASE_URL);
  dbUrl.pathname = `/${dbName}`;
  const dataDir = mkdtempSync(join(tmpdir(), "sm-prov-agent-"));
  const cp = await startEntry({
    NODE_ENV: "production",
    DATABASE_URL: dbUrl.toString(),
    SUPAMANAGER_JWT_SECRET: "prov-jwt-secret-0123456789abcdef0123456789",
    SUPAMANAGER_ENCRYPTION_KEY: "ef".repeat(32),
    SUPAMANAGER_ADMIN_EMAIL: ADMIN.email,
    SUPAMANAGER_ADMIN_PASSWORD: ADMIN.password,
    SUPAMANAGER_LOCAL_IMAGES_FILE: join(REPO_ROOT, "images/manifest.local.json"),
    SUPAMANAGER_PORT_RANGE: "47000-47999",
    SUPAMANAGER_LOG_LEVEL: "warn",
  });
  let agent: ReturnType<typeof runAgent> | undefined;
  const sm: number[] = [];
  const plain: number[] = [];
  try {
    const { access_token: token } = await api<{ access_token: string }>(cp.url, "/auth/v1/token?grant_type=password", {
      method: "POST",
      body: ADMIN,
    });
    const join_ = await api<{ token: string }>(cp.url, "/platform/fleet/join-tokens", {
      method: "POST",
      token,
      body: { region: "bench-1" },
    });
    const joined = await joinAgent({ url: cp.url, token: join_.token, dataDir });
    if (joined.code !== 0) throw new Error(`agent join failed: ${joined.output}`);
    agent = runAgent(dataDir);
    await until("the host to be online", 30_000, async () => {
      const hosts = await api<{ status: string }[]>(cp.url, "/platform/fleet/hosts", { token });
      return hosts.some((h) => h.status === "online");
    });
    const org = await api<{ slug: string }>(cp.url, "/platform/organizations", {
      method: "POST",
      token,
      body: { name: "Provisioning", tier: "tier_free" },
    });

    for (let i = 0; i < rounds; i++) {
      // Through SupaManager.
      const t0 = performance.now();
      const { ref } = await api<{ ref: string }>(cp.url, "/platform/projects", {
        method: "POST",
        token,
        body: { name: `prov-${i}`, organization_slug: org.slug, db_pass: "prov-db-password-1", db_region: "bench-1" },
      });
      await until(`${ref} ACTIVE_HEALTHY`, 180_000, async () => {
        const { status } = await api<{ status: string }>(cp.url, `/platform/projects/${ref}/status`, { token });
        if (status === "INIT_FAILED") throw new Error(`${ref} failed to start`);
        return status === "ACTIVE_HEALTHY";
      });
      sm.push((performance.now() - t0) / 1000);

      // Keep the exact stack, then remove the project so names and ports are free again.
      const copy = mkdtempSync(join(tmpdir(), "sm-prov-stack-"));
      cpSync(join(dataDir, "projects", ref), copy, { recursive: true });
      await api(cp.url, `/platform/projects/${ref}`, { method: "DELETE", token });
      await until(`${ref} removed`, 120_000, async () => {
        const res = await fetch(`${cp.url}/platform/projects/${ref}/status`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return res.status === 404;
      });

      // By hand, same stack.
      const compose = [
        "-p",
        ref,
        "--project-directory",
        copy,
        "-f",
        join(copy, "docker-compose.json"),
        "--env-file",
        join(copy, ".env"),
      ];
      const t1 = performance.now();
      await run("docker-compose", [...compose, "up", "-d"]);
      await until(`${ref} healthy by hand`, 180_000, async () => {
        const { stdout } = await run("docker", [
          "ps",
          "-a",
          "--filter",
          `label=com.docker.compose.project=${ref}`,
          "--format",
          "{{.Status}}",
        ]);
        const lines = stdout.trim().split("\n").filter(Boolean);
        return lines.length > 0 && lines.every((l) => l.includes("(healthy)"));
      });
      plain.push((performance.now() - t1) / 1000);
      await run("docker-compose", [...compose, "down", "-v", "--remove-orphans"]);
      rmSync(copy, { recursive: true, force: true });
      console.log(
        `round ${i + 1}: SupaManager ${sm[i]?.toFixed(2)} s, docker-compose by hand ${plain[i]?.toFixed(2)} s`,
      );
    }
  } finally {
    await agent?.stop("SIGTERM");
    await cp.stop("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
    await adminQuery(`drop database if exists "${dbName}" with (force)`);
  }
  const machine = machineLine();
  console.log(`machine: ${machine}`);
  console.log(
    `| rounds | SupaManager create → ACTIVE_HEALTHY (median s) | docker-compose up + healthy (median s) | ratio |`,
  );
  console.log("|---|---|---|---|");
  console.log(
    `| ${rounds} | ${median(sm).toFixed(2)} | ${median(plain).toFixed(2)} | ${(median(sm) / median(plain)).toFixed(2)} |`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
