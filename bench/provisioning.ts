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
import { startBenchFleet } from "./docker-fleet.js";
import { api, machineLine, median, until } from "./support.js";

const run = promisify(execFile);
const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" } } });
const rounds = Number(values.rounds);

async function main() {
  const fleet = await startBenchFleet("prov", "47000-47999");
  const { url, token, dataDir } = fleet;
  const sm: number[] = [];
  const plain: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // Through SupaManager.
      const t0 = performance.now();
      const ref = await fleet.createHealthyProject(`prov-${i}`, "prov-db-password-1");
      sm.push((performance.now() - t0) / 1000);

      // Keep the exact stack, then remove the project so names and ports are free again.
      const copy = mkdtempSync(join(tmpdir(), "sm-prov-stack-"));
      cpSync(join(dataDir, "projects", ref), copy, { recursive: true });
      await api(url, `/platform/projects/${ref}`, { method: "DELETE", token });
      await until(`${ref} removed`, 120_000, async () => {
        const res = await fetch(`${url}/platform/projects/${ref}/status`, {
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
    await fleet.stop();
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
