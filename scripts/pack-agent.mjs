#!/usr/bin/env node
// Pack the host agent as a self-contained npm package (ADR 0040): one ES module bundling the
// agent and its dependencies, so a host runs it straight from the unpacked tarball (no
// `npm install`, no registry access beyond the tarball itself).
//   npm run agent:pack -- [--version 0.2.0] [--name supamanager-agent] [--out dir]
// Writes <out>/<name>-<version>.tgz (npm's layout: package/package.json, package/dist/cli.js) and
// prints its sha256 (for SUPAMANAGER_AGENT_SHA256) and integrity (what the npm registry shows).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  options: { version: { type: "string" }, name: { type: "string" }, out: { type: "string" } },
  strict: true,
});
const agentPkg = JSON.parse(readFileSync(join(root, "host-agent/package.json"), "utf8"));
const version = values.version ?? agentPkg.version;
const name = values.name ?? "supamanager-agent";
if (!/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/.test(version)) {
  console.error(`pack-agent: --version ${version} is not a version such as 1.2.3`);
  process.exit(1);
}
const out = resolve(values.out ?? join(root, "host-agent/dist/pack"));
const staging = mkdtempSync(join(tmpdir(), "supamanager-agent-pack-"));
try {
  const pkgDir = join(staging, "package");
  mkdirSync(join(pkgDir, "dist"), { recursive: true });
  await build({
    entryPoints: [join(root, "host-agent/src/cli.ts")],
    outfile: join(pkgDir, "dist/cli.js"),
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    alias: { "@supamanager/shared": join(root, "shared/src/index.ts") },
    // ssh2's optional native parts (dockerode over SSH, never used: the agent talks to a socket).
    external: ["cpu-features", "*.node"],
    define: { __SUPAMANAGER_AGENT_VERSION__: JSON.stringify(version) },
    // CommonJS dependencies call require() and read __dirname; an ES module has neither.
    banner: {
      js: [
        'import { createRequire as __createRequire } from "node:module";',
        'import { fileURLToPath as __fileURLToPath } from "node:url";',
        'import { dirname as __pathDirname } from "node:path";',
        "const require = __createRequire(import.meta.url);",
        "const __filename = __fileURLToPath(import.meta.url);",
        "const __dirname = __pathDirname(__filename);",
      ].join(" "),
    },
    legalComments: "none",
    logLevel: "warning",
  });
  writeFileSync(
    join(pkgDir, "package.json"),
    `${JSON.stringify(
      {
        name,
        version,
        description: "SupaManager host agent: runs SupaManager projects on a Docker host",
        license: agentPkg.license,
        type: "module",
        engines: { node: ">=20" },
        bin: { "supamanager-agent": "dist/cli.js" },
        files: ["dist"],
      },
      null,
      2,
    )}\n`,
  );
  mkdirSync(out, { recursive: true });
  const file = join(out, `${name.replace(/^@/, "").replace("/", "-")}-${version}.tgz`);
  execFileSync("tar", ["-czf", file, "--owner=0", "--group=0", "-C", staging, "package"]);
  const data = readFileSync(file);
  const sha256 = createHash("sha256").update(data).digest("hex");
  const integrity = `sha512-${createHash("sha512").update(data).digest("base64")}`;
  console.log(JSON.stringify({ file, name, version, bytes: data.length, sha256, integrity }));
} finally {
  rmSync(staging, { recursive: true, force: true });
}
