import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { UPGRADE_LABEL } from "../../host-agent/src/upgrades/docker-major.js";

/**
 * Real Docker state, read with the docker CLI (argv arrays only, never a shell), for tests that
 * assert what the host agent really did. Everything is scoped by a project ref: Compose labels
 * containers (and volumes) with `com.docker.compose.project=<ref>`, and the rendered stack names
 * its network `<ref>_net` and volumes `<ref>_<name>`.
 */

const exec = promisify(execFile);
export const PROJECT_LABEL = "com.docker.compose.project";

export async function docker(args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await exec("docker", args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

const lines = (s: string) =>
  s
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

/** Does `docker info` answer (within 15 s)? */
export async function dockerAvailable(): Promise<boolean> {
  try {
    await docker(["info", "--format", "{{.ServerVersion}}"], 15_000);
    return true;
  } catch {
    return false;
  }
}

export interface ContainerRow {
  name: string;
  /** created | running | exited | … */
  state: string;
  /** Human status, e.g. "Up 5 seconds (healthy)". */
  status: string;
  /** e.g. "127.0.0.1:54001->5432/tcp" */
  ports: string;
  service: string;
  health: "healthy" | "unhealthy" | "starting" | "none";
}

function healthOf(status: string): ContainerRow["health"] {
  if (status.includes("(health: starting)")) return "starting";
  if (status.includes("(unhealthy)")) return "unhealthy";
  if (status.includes("(healthy)")) return "healthy";
  return "none";
}

/** `docker ps -a --filter label=com.docker.compose.project=<ref>`, sorted by name. */
export async function projectContainers(ref: string): Promise<ContainerRow[]> {
  const out = await docker([
    "ps",
    "-a",
    "--no-trunc",
    "--filter",
    `label=${PROJECT_LABEL}=${ref}`,
    "--format",
    `{{.Names}}\t{{.State}}\t{{.Status}}\t{{.Ports}}\t{{.Label "com.docker.compose.service"}}`,
  ]);
  return lines(out)
    .map((l) => {
      const [name = "", state = "", status = "", ports = "", service = ""] = l.split("\t");
      return { name, state, status, ports, service, health: healthOf(status) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Volume names: labelled with the project, or named `<ref>_…`. */
export async function projectVolumes(ref: string): Promise<string[]> {
  const [byLabel, byName] = await Promise.all([
    docker(["volume", "ls", "--filter", `label=${PROJECT_LABEL}=${ref}`, "--format", "{{.Name}}"]),
    docker(["volume", "ls", "--filter", `name=${ref}`, "--format", "{{.Name}}"]),
  ]);
  return [...new Set([...lines(byLabel), ...lines(byName).filter((n) => n.startsWith(`${ref}_`))])].sort();
}

/** Network names: labelled with the project, or named `<ref>_…`. */
export async function projectNetworks(ref: string): Promise<string[]> {
  const [byLabel, byName] = await Promise.all([
    docker(["network", "ls", "--filter", `label=${PROJECT_LABEL}=${ref}`, "--format", "{{.Name}}"]),
    docker(["network", "ls", "--filter", `name=${ref}`, "--format", "{{.Name}}"]),
  ]);
  return [...new Set([...lines(byLabel), ...lines(byName).filter((n) => n.startsWith(`${ref}_`))])].sort();
}

/** `State.StartedAt` of each named container. */
export async function startedAt(names: string[]): Promise<Record<string, string>> {
  if (names.length === 0) return {};
  const out = await docker(["inspect", "--format", "{{.Name}}\t{{.State.StartedAt}}", ...names]);
  return Object.fromEntries(
    lines(out).map((l) => {
      const [name = "", at = ""] = l.split("\t");
      return [name.replace(/^\//, ""), at];
    }),
  );
}

/**
 * Remove everything a project left on the engine (what `docker-compose down -v` does, without
 * needing its compose file): containers by label, then networks and volumes by label/name.
 * Errors are collected, not thrown, so cleanup always goes on.
 */
export async function removeProjectLeftovers(ref: string): Promise<string[]> {
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      errors.push(`${what}: ${(err as Error).message}`);
    }
  };
  await attempt("containers", async () => {
    const ids = [
      ...lines(await docker(["ps", "-aq", "--filter", `label=${PROJECT_LABEL}=${ref}`])),
      // An upgrade's temporary old-major server (host-agent/src/upgrades/docker-major.ts).
      ...lines(await docker(["ps", "-aq", "--filter", `label=${UPGRADE_LABEL}=${ref}`])),
    ];
    if (ids.length > 0) await docker(["rm", "-f", "-v", ...ids], 60_000);
  });
  await attempt("networks", async () => {
    const nets = await projectNetworks(ref);
    if (nets.length > 0) await docker(["network", "rm", ...nets]);
  });
  await attempt("volumes", async () => {
    const vols = await projectVolumes(ref);
    if (vols.length > 0) await docker(["volume", "rm", "-f", ...vols]);
  });
  return errors;
}
