import type Docker from "dockerode";
import { PROJECT_LABEL, SERVICE_LABEL } from "./docker.js";

/**
 * Files into a running container of one of a project's Compose services (the edge runtime's
 * functions volume, ADR 0032), through Docker's archive API: no tool is needed inside the image.
 * The container is found by the labels com.docker.compose.project=<ref> and
 * com.docker.compose.service=<service>, checked again on the container, so another project's
 * container is never touched.
 */

/** One file of a tar archive (a path relative to the directory it is unpacked in). */
export interface TarEntry {
  path: string;
  content: Buffer;
  /** Permission bits (default 0o644). */
  mode?: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/** Split a path into ustar's prefix (≤155 bytes) and name (≤100 bytes) at a slash. */
function splitPath(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: "", name: path };
  for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== "") return { prefix, name };
  }
  throw new Error(`path too long for a tar entry: ${path.slice(0, 80)}…`);
}

function header(path: string, size: number, mode: number, type: "0" | "5"): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const { prefix, name } = splitPath(path);
  h.write(name, 0, 100, "utf8");
  h.write(octal(mode, 8), 100, 8, "ascii");
  h.write(octal(0, 8), 108, 8, "ascii"); // uid root
  h.write(octal(0, 8), 116, 8, "ascii"); // gid root
  h.write(octal(size, 12), 124, 12, "ascii");
  h.write(octal(Math.floor(Date.now() / 1000), 12), 136, 12, "ascii");
  h.write("        ", 148, 8, "ascii"); // checksum placeholder
  h.write(type, 156, 1, "ascii");
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return h;
}

/**
 * A ustar archive of `entries`, with a directory entry (0o755) for every parent directory, so
 * Docker creates them with known permissions.
 */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const e of entries) {
    const segments = e.path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const dir = `${segments.slice(0, i).join("/")}/`;
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      parts.push(header(dir, 0, 0o755, "5"));
    }
    parts.push(header(e.path, e.content.length, e.mode ?? 0o644, "0"), e.content);
    const pad = (BLOCK - (e.content.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}

/** The running container of `service` in project `ref`, or null. */
export async function runningServiceContainer(docker: Docker, ref: string, service: string) {
  const list = await docker.listContainers({
    filters: { label: [`${PROJECT_LABEL}=${ref}`, `${SERVICE_LABEL}=${service}`], status: ["running"] },
  });
  const found = list.find((c) => c.Labels?.[PROJECT_LABEL] === ref && c.Labels?.[SERVICE_LABEL] === service);
  return found ? docker.getContainer(found.Id) : null;
}

/** Unpack a tar archive into `dir` of the running container of `service` (Docker's PUT /archive). */
export async function putServiceArchive(
  docker: Docker,
  ref: string,
  service: string,
  dir: string,
  tar: Buffer,
): Promise<void> {
  const container = await runningServiceContainer(docker, ref, service);
  if (!container) throw new ServiceNotRunning(ref, service);
  await container.putArchive(tar, { path: dir });
}

/** Restart the container of `service` in project `ref` (Docker's stop timeout: `seconds`). */
export async function restartService(docker: Docker, ref: string, service: string, seconds = 5): Promise<void> {
  const container = await runningServiceContainer(docker, ref, service);
  if (!container) throw new ServiceNotRunning(ref, service);
  await container.restart({ t: seconds });
}

/** The service has no running container (stopped, paused project, not deployed). */
export class ServiceNotRunning extends Error {
  constructor(ref: string, service: string) {
    super(`service "${service}" of project ${ref} has no running container`);
    this.name = "ServiceNotRunning";
  }
}
