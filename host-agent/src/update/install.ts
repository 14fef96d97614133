import { execFile } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { type AgentUpdate, PackageIntegrity } from "@supamanager/shared";
import { z } from "zod";
import type { Logger } from "../log.js";
import { type Install, versionsDir } from "./state.js";

const run = promisify(execFile);

/** Largest package tarball accepted (the bundled agent is a few MiB). */
export const MAX_TARBALL_BYTES = 200 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 5 * 60_000;

/** An update that cannot be installed; `message` says why and what to do, for logs and hello. */
export class UpdateError extends Error {
  override name = "UpdateError";
}

/** The fields of an npm registry version document the agent uses. */
const NpmVersionDoc = z.object({
  name: z.string(),
  version: z.string(),
  dist: z.object({
    tarball: z.string().regex(/^https?:\/\//, "dist.tarball must be an http(s) URL"),
    integrity: z.string().optional(),
  }),
});

export interface ResolvedSource {
  tarball: string;
  integrity: string;
}

/**
 * Where the wanted version's tarball is and what it must hash to: the operator's URL and checksum,
 * or the npm registry's version document (`<registry>/<package>/<version>`, its `dist.tarball`
 * and `dist.integrity`). A registry version without an integrity (very old packages only have a
 * sha1 `shasum`) is refused: sha1 does not protect against a forged tarball.
 */
export async function resolveSource(update: AgentUpdate, fetchFn: typeof fetch = fetch): Promise<ResolvedSource> {
  if (update.source.kind === "url") return { tarball: update.source.url, integrity: update.source.integrity };
  const { registry, package: name } = update.source;
  // Scoped names keep their @ and encode the slash, as npm's own client asks for them.
  const url = `${registry.replace(/\/+$/, "")}/${name.replace("/", "%2f")}/${encodeURIComponent(update.version)}`;
  let res: Response;
  try {
    res = await fetchFn(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new UpdateError(`the npm registry ${registry} could not be reached: ${(err as Error).message}`);
  }
  if (res.status === 404) {
    throw new UpdateError(
      `the npm registry ${registry} has no ${name}@${update.version}; publish it or fix SUPAMANAGER_AGENT_VERSION`,
    );
  }
  if (!res.ok)
    throw new UpdateError(`the npm registry ${registry} answered ${res.status} for ${name}@${update.version}`);
  const doc = NpmVersionDoc.safeParse(await res.json().catch(() => null));
  if (!doc.success)
    throw new UpdateError(`the npm registry's document for ${name}@${update.version} is not a version document`);
  if (doc.data.version !== update.version || doc.data.name !== name) {
    throw new UpdateError(
      `the npm registry answered ${doc.data.name}@${doc.data.version} when asked for ${name}@${update.version}`,
    );
  }
  // npm may list several hashes; the strongest one we know is used.
  const hashes = (doc.data.dist.integrity ?? "").split(/\s+/).filter((h) => PackageIntegrity.safeParse(h).success);
  const integrity = hashes.find((h) => h.startsWith("sha512-")) ?? hashes.find((h) => h.startsWith("sha256-"));
  if (!integrity) {
    throw new UpdateError(`${name}@${update.version} has no sha512/sha256 dist.integrity in the registry; refusing it`);
  }
  return { tarball: doc.data.dist.tarball, integrity };
}

/** Does `data` hash to the Subresource Integrity string `integrity` (sha256-… or sha512-…)? */
export function matchesIntegrity(data: Uint8Array, integrity: string): boolean {
  const m = /^(sha256|sha512)-(.+)$/.exec(integrity);
  if (!m?.[1] || !m[2]) return false;
  return createHash(m[1]).update(data).digest("base64") === m[2];
}

/** A sha256 checksum in hex (what `sha256sum` prints), as Subresource Integrity. */
export function sha256HexToIntegrity(hex: string): string {
  return `sha256-${Buffer.from(hex, "hex").toString("base64")}`;
}

async function download(url: string, fetchFn: typeof fetch): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetchFn(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: "follow" });
  } catch (err) {
    throw new UpdateError(`downloading ${safeUrl(url)} failed: ${(err as Error).message}`);
  }
  if (!res.ok || !res.body) throw new UpdateError(`downloading ${safeUrl(url)} failed: HTTP ${res.status}`);
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > MAX_TARBALL_BYTES) throw new UpdateError(`${safeUrl(url)} is larger than ${MAX_TARBALL_BYTES} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > MAX_TARBALL_BYTES) throw new UpdateError(`${safeUrl(url)} is larger than ${MAX_TARBALL_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A URL for logs and messages: no query (it may hold a signature) and no credentials. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(an invalid URL)";
  }
}

const PackageJson = z.object({
  version: z.string(),
  bin: z.union([z.string(), z.record(z.string(), z.string())]),
});

export interface InstallOptions {
  dataDir: string;
  update: AgentUpdate;
  logger: Logger;
  fetch?: typeof fetch;
  /** The Node binary that runs the new version's `--version` check (default: this one). */
  node?: string;
}

/**
 * Download the wanted version, check its integrity, unpack it into its own directory under
 * `<data-dir>/agent/versions/` and make sure its CLI starts and says the wanted version. Nothing
 * running is touched: the unpacked version only runs once the state file points at it.
 */
export async function installVersion(opts: InstallOptions): Promise<Install> {
  const { update, logger: log } = opts;
  const fetchFn = opts.fetch ?? fetch;
  const source = await resolveSource(update, fetchFn);
  log.info("agent update: downloading", { version: update.version, from: safeUrl(source.tarball) });
  const data = await download(source.tarball, fetchFn);
  if (!matchesIntegrity(data, source.integrity)) {
    throw new UpdateError(
      `the package downloaded from ${safeUrl(source.tarball)} does not match its checksum (${source.integrity.slice(0, 16)}…); not installed`,
    );
  }
  log.info("agent update: checksum verified; unpacking", { version: update.version, bytes: data.length });
  const digest = createHash("sha256").update(source.integrity).digest("hex").slice(0, 12);
  const root = versionsDir(opts.dataDir);
  const final = join(root, `${safeName(update.version)}-${digest}`);
  const finalInstall = await readInstall(final, update.version).catch(() => null);
  // The same bytes were unpacked before (an earlier attempt, a rollback target): reuse them.
  if (
    finalInstall &&
    (await checkCli(finalInstall, opts.node).then(
      () => true,
      () => false,
    ))
  )
    return finalInstall;
  await mkdir(root, { recursive: true, mode: 0o700 });
  const tmp = join(root, `.tmp-${randomUUID()}`);
  await mkdir(tmp, { mode: 0o700 });
  try {
    const tarball = join(tmp, "package.tgz");
    await writeFile(tarball, data, { mode: 0o600 });
    try {
      // GNU and BSD tar refuse absolute names and `..` members by default; owners are not restored.
      await run("tar", ["-xzf", tarball, "-C", tmp, "--no-same-owner"], { timeout: 120_000 });
    } catch (err) {
      throw new UpdateError(`unpacking the package failed: ${firstLine(err)}`);
    }
    await rm(tarball, { force: true });
    const install = await readInstall(tmp, update.version);
    await checkCli(install, opts.node);
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    return readInstall(final, update.version);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

const safeName = (version: string) => version.replace(/[^0-9A-Za-z.-]/g, "_");

/** The unpacked package under `root` (npm tarballs hold one `package/` directory). */
async function readInstall(root: string, version: string): Promise<Install> {
  const dir = join(root, "package");
  let pkg: z.infer<typeof PackageJson>;
  try {
    pkg = PackageJson.parse(JSON.parse(await readFile(join(dir, "package.json"), "utf8")));
  } catch {
    throw new UpdateError(
      "the package has no package/package.json with a version and a bin; is it a supamanager-agent package?",
    );
  }
  if (pkg.version !== version) {
    throw new UpdateError(`the package is version ${pkg.version}, not the wanted ${version}`);
  }
  const bin = typeof pkg.bin === "string" ? pkg.bin : pkg.bin["supamanager-agent"];
  if (!bin) throw new UpdateError("the package has no supamanager-agent bin");
  const cli = resolve(dir, bin);
  const rel = relative(dir, cli);
  if (rel.startsWith("..") || isAbsolute(rel)) throw new UpdateError("the package's bin points outside the package");
  if (
    !(await stat(cli).then(
      (s) => s.isFile(),
      () => false,
    ))
  )
    throw new UpdateError(`the package's bin ${bin} is missing`);
  return { version, dir, cli };
}

/** The new CLI must at least start and name the wanted version (`--version`) before anything switches to it. */
async function checkCli(install: Install, node = process.execPath): Promise<void> {
  let out: string;
  try {
    ({ stdout: out } = await run(node, [install.cli, "--version"], {
      timeout: 30_000,
      env: { PATH: process.env.PATH },
    }));
  } catch (err) {
    throw new UpdateError(`version ${install.version} does not start (\`--version\` failed: ${firstLine(err)})`);
  }
  if (out.trim() !== install.version) {
    throw new UpdateError(`version ${install.version}'s CLI says it is ${out.trim().slice(0, 64) || "nothing"}`);
  }
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  const text = (e.stderr?.trim() || e.message || String(err)).split("\n").find((l) => l.trim()) ?? "";
  return text.slice(0, 300);
}
