import type Docker from "dockerode";
import type { Logger } from "../log.js";
import { composeEnv, throwawayShell } from "../runtime/docker.js";
import { run } from "../runtime/exec.js";
import { execInContainer } from "../runtime/service-exec.js";
import { ExecError } from "../runtime/types.js";
import { type DataMoveProgress, moveDataAcrossMajors } from "./major-version.js";
import { type MajorVersion, type MajorVersionStep, waitHealthy } from "./procedure.js";

/**
 * The data step across PostgreSQL majors on a Docker host (docs/upgrades.md, ADR 0038). Called by
 * the upgrade procedure with the old stack stopped, the old data copied to `snapshot` and the
 * target's stack files written:
 *
 * 1. the project's data volume is emptied (the old data is safe in `snapshot`);
 * 2. the target's database service alone is started with Compose, so the new major initialises
 *    the empty volume with the release's own environment and init scripts; wait until healthy;
 * 3. the old image runs a server on `snapshot` in a container of its own (`oldServerName(ref)`,
 *    no network, no Compose labels, so nothing else — the reconciler, the health watcher, a
 *    backup — ever sees or uses it); wait until it answers;
 * 4. moveDataAcrossMajors streams roles and every database from old to new and verifies them,
 *    its progress in the agent's log;
 * 5. the old server is stopped (a fast shutdown: the copy stays a clean data directory, the
 *    rollback target) and removed. The new database keeps running; the procedure then starts
 *    the rest of the target's stack.
 *
 * Any failure removes the old server and throws: the procedure rolls back, and its rollback
 * calls cleanup() first, also after an agent restart (the container's name is derived from the
 * ref), so the copy is never copied back while a server still has it open.
 */
export function dockerMajorVersion(
  docker: Docker,
  opts: { readyTimeoutMs?: number; pollMs?: number } = {},
): MajorVersion {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10 * 60_000;
  const pollMs = opts.pollMs ?? 500;
  const exec = (container: string, cmd: readonly string[], o: { stdin: boolean }) =>
    execInContainer(docker, container, cmd, o);

  const cleanup = async (ref: string, log: Logger): Promise<void> => {
    const name = oldServerName(ref);
    const env = composeEnv();
    try {
      // SIGTERM becomes a fast shutdown in the local images; 120 s before Docker kills it.
      await run("docker", ["stop", "--time", "120", name], { env, timeoutMs: 180_000 });
    } catch (err) {
      if (isNoSuchContainer(err)) return;
      log.warn("could not stop the upgrade's old-major server; removing it", { container: name, err });
    }
    try {
      await run("docker", ["rm", "--force", "--volumes", name], { env, timeoutMs: 60_000 });
    } catch (err) {
      if (!isNoSuchContainer(err)) throw err;
    }
  };

  const move: MajorVersionStep = async (c) => {
    const { log } = c;
    const env = composeEnv();
    const runtime = c.runtime;
    if (!runtime.composeUpServices) throw new Error("this agent's container runtime cannot start one service alone");
    // 1. Empty the data volume (dot files too); a leftover server from an earlier try goes first.
    await cleanup(c.ref, log);
    log.info("emptying the data volume for the new PostgreSQL major", { volume: c.volume, to: c.toMajor });
    await throwawayShell(c.newImage, [`${c.volume}:/data`], "find /data -mindepth 1 -delete", 30 * 60_000);

    // 2. The new major initialises the volume as a new project's database would be.
    log.info("starting the new database service", { service: c.service, image: c.newImage });
    await runtime.composeUpServices(c.project, [c.service]);
    await waitHealthy(runtime, c.ref, [c.service], readyTimeoutMs, pollMs);
    const newContainer = (await runtime.listProjectContainers(c.ref)).find(
      (x) => x.service === c.service && x.state === "running",
    );
    if (!newContainer) throw new Error(`the new ${c.service} service stopped right after it became healthy`);

    // 3. The old major on the copy of the old data.
    const oldServer = oldServerName(c.ref);
    log.info("starting the old database server on the copy of the old data", { container: oldServer });
    try {
      await run(
        "docker",
        [
          "run",
          "--detach",
          "--name",
          oldServer,
          "--label",
          `${UPGRADE_LABEL}=${c.ref}`,
          "--network",
          "none",
          "-v",
          `${c.snapshot}:${c.oldDataPath}`,
          c.oldImage,
        ],
        { env, timeoutMs: 120_000 },
      );
      await waitAnswering(exec, oldServer, c.user, readyTimeoutMs, pollMs);

      // 4. Roles and databases, verified.
      let last = 0;
      const result = await moveDataAcrossMajors({
        exec,
        oldContainer: oldServer,
        newContainer: newContainer.id,
        user: c.user,
        log,
        onProgress: (p) => {
          if (p.phase === "database" && Date.now() - last < 5000) return;
          last = Date.now();
          log.info("moving data across majors", progressFields(p));
        },
      });
      log.info("data moved to the new PostgreSQL major", {
        from: result.fromVersion,
        to: result.toVersion,
        bytes: result.bytes,
        ms: result.ms,
        databases: result.databases.length,
      });
    } finally {
      // 5. Also on failure: the rollback copies `snapshot` back and needs it closed.
      await cleanup(c.ref, log);
    }
  };

  return { move, cleanup };
}

/** The label on the temporary old-major server (for an operator's `docker ps --filter`). */
export const UPGRADE_LABEL = "dev.supamanager.upgrade";

/** Deterministic, so a restarted agent finds what its predecessor left running. */
export function oldServerName(ref: string): string {
  return `supamanager-upgrade-${ref}-old-db`;
}

function isNoSuchContainer(err: unknown): boolean {
  return err instanceof ExecError && /no such container/i.test(err.stderr);
}

async function waitAnswering(
  exec: (container: string, cmd: readonly string[], o: { stdin: boolean }) => ReturnType<typeof execInContainer>,
  container: string,
  user: string,
  timeoutMs: number,
  pollMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let code: number | null = null;
    try {
      const e = await exec(container, ["pg_isready", "--quiet", "-U", user, "-d", "postgres"], { stdin: false });
      e.stream.resume();
      code = await e.exitCode();
    } catch (err) {
      // Not running (yet, or any more): say what Docker knows.
      const state = await run("docker", ["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container], {
        env: composeEnv(),
        timeoutMs: 30_000,
      }).catch(() => "unknown");
      if (!state.startsWith("running") && !state.startsWith("created")) {
        throw new Error(
          `the old database server exited before it answered (${state.trim()}): ${(err as Error).message}`,
        );
      }
    }
    if (code === 0) return;
    if (Date.now() >= deadline) {
      throw new Error(`the old database server did not answer within ${Math.round(timeoutMs / 1000)} s`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

function progressFields(p: DataMoveProgress): Record<string, unknown> {
  const mb = (n: number | undefined) => (n === undefined ? undefined : Math.round(n / 1e5) / 10);
  return {
    phase: p.phase,
    ...(p.database !== undefined ? { database: p.database, of: `${p.index}/${p.count}` } : {}),
    ...(p.databaseBytes !== undefined ? { streamedMB: mb(p.databaseBytes) } : {}),
    ...(p.databaseSizeBytes !== undefined ? { sizeMB: mb(p.databaseSizeBytes) } : {}),
    totalMB: mb(p.totalBytes),
  };
}
