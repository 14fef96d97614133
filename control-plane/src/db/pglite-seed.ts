import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";

/**
 * A freshly initialised, empty PGlite cluster, made once at build time (`npm run build`, into
 * control-plane/dist/) and loaded into a new data directory instead of running initdb there.
 * PGlite's initdb (in WebAssembly) is most of a first start: ~3 s on an idle machine, 10 s and
 * more on a busy one; unpacking the seed takes a fraction of that (docs/benchmarks.md). The seed
 * holds no schema and no data (migrations still run on every start) and is used only by the
 * PGlite version that made it.
 */

/** Where the built entry looks for the seed: dist/pglite-seed.tar.gz beside dist/db/. */
export const DEFAULT_SEED = fileURLToPath(new URL("../pglite-seed.tar.gz", import.meta.url));

/** The installed @electric-sql/pglite version (the seed is only valid for it). */
export function pgliteVersion(): string {
  let dir = dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      const parsed = JSON.parse(readFileSync(pkg, "utf8")) as { name?: string; version?: string };
      if (parsed.name === "@electric-sql/pglite" && parsed.version) return parsed.version;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find @electric-sql/pglite's package.json");
    dir = up;
  }
}

const versionFile = (seed: string) => `${seed}.version`;

/** Make the seed: initdb in memory, dump the cluster (gzip tar), note the PGlite version. */
export async function writePgliteSeed(seed = DEFAULT_SEED): Promise<void> {
  const client = new PGlite();
  await client.waitReady;
  const dump = await client.dumpDataDir("gzip");
  await client.close();
  const tmp = `${seed}.tmp-${process.pid}`;
  writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
  renameSync(tmp, seed);
  writeFileSync(versionFile(seed), `${pgliteVersion()}\n`);
}

/**
 * The seed to load into `pgdataDir`, when that directory is new (missing or empty) and a seed made
 * by this PGlite version exists; otherwise undefined (PGlite runs initdb or opens what is there).
 */
export function seedFor(pgdataDir: string, seed = DEFAULT_SEED): Blob | undefined {
  if (existsSync(pgdataDir) && readdirSync(pgdataDir).length > 0) return undefined;
  if (!existsSync(seed) || !existsSync(versionFile(seed))) return undefined;
  if (readFileSync(versionFile(seed), "utf8").trim() !== pgliteVersion()) return undefined;
  return new Blob([readFileSync(seed)]);
}
