#!/usr/bin/env node
// Builds the local test images (no registry is reachable: nothing can be pulled) and writes
// images/manifest.local.json, mapping service name -> image tag.
//
//   node images/build.mjs [--prune] [name ...]     (names: postgres, postgres-17, postgres-meta, gateway, ingress)
//
// Each image is a Debian rootfs made by `debootstrap --variant=minbase` plus a few files, fed to
// `docker import`. Tags are `supamanager/<name>:<hash of the recipe>`; an image whose tag exists is
// not rebuilt. Each built (or found) image is also tagged `supamanager/<name>:local`, the name the
// built-in `local` release runs (ADR 0018), so the last build on a host is what its projects use. Debootstrapped rootfs tarballs and the postgres-meta node_modules are cached under
// /var/cache/supamanager-images (SUPAMANAGER_IMAGES_CACHE), keyed by their own recipe hash.
// --prune removes supamanager/* images whose tag is not in the manifest. See docs/test-images.md.
// Needs root, docker and debootstrap; runs .ci/start-docker when either is missing.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, chown, copyFile, cp, mkdir, mkdtemp, readdir, rename, rm, statfs, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// Knobs read from the environment (not turbo inputs: this script is not a turbo task).
const { env } = process;
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const CACHE = env.SUPAMANAGER_IMAGES_CACHE || "/var/cache/supamanager-images";
const MANIFEST = join(HERE, "manifest.local.json");
// Debian 12 for every rootfs but postgres17: Debian 12 packages PostgreSQL 15 only, Debian 13 17 only.
const SUITE = "bookworm";
// Bump when build.mjs changes what ends up in a rootfs / an image without changing its inputs.
const ROOTFS_REV = 1;
const IMAGE_REV = 2;

const started = Date.now();
const timings = [];
const secs = (ms) => `${(ms / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[images ${secs(Date.now() - started).padStart(6)}] ${msg}`);

async function timed(label, fn) {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    const ms = Date.now() - t0;
    timings.push([label, ms]);
    log(`${label}: ${secs(ms)}`);
  }
}

/** Runs a command; rejects with its output tail on failure. */
function run(cmd, args, { cwd, extraEnv, quiet = true } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const keep = (chunk) => {
      out = (out + chunk.toString()).slice(-8000);
      if (!quiet) process.stdout.write(chunk);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolvePromise(out);
      else
        reject(
          new Error(`${cmd} ${args.join(" ")} exited with ${code}\n${out.trim().split("\n").slice(-25).join("\n")}`),
        );
    });
  });
}

const ok = (cmd, args) => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const fileHash = (path) => sha256(readFileSync(path));

/**
 * The Debian mirror apt is configured with for `suite` (deb822 sources first: debian.sources, then
 * the others, such as the supamanager-trixie.sources of .ci/start-docker; then sources.list), else
 * the one configured for bookworm (one archive serves every suite).
 */
function debianMirror(suite = SUITE) {
  if (env.SUPAMANAGER_DEBIAN_MIRROR) return env.SUPAMANAGER_DEBIAN_MIRROR;
  const dir = "/etc/apt/sources.list.d";
  const others = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".sources") && f !== "debian.sources")
        .sort()
    : [];
  for (const file of ["debian.sources", ...others].map((f) => join(dir, f)).filter((f) => existsSync(f))) {
    for (const stanza of readFileSync(file, "utf8").split(/\n\s*\n/)) {
      const field = (name) =>
        stanza
          .match(new RegExp(`^${name}:\\s*(.+)$`, "mi"))?.[1]
          .trim()
          .split(/\s+/) ?? [];
      if (field("Types").includes("deb") && field("Suites").includes(suite) && field("URIs")[0]) {
        return field("URIs")[0];
      }
    }
  }
  if (existsSync("/etc/apt/sources.list")) {
    for (const line of readFileSync("/etc/apt/sources.list", "utf8").split("\n")) {
      const m = line.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/);
      if (m && m[2] === suite) return m[1];
    }
  }
  return suite === SUITE ? "http://deb.debian.org/debian" : debianMirror(SUITE);
}

// Paths (relative to the rootfs) removed from every rootfs to shrink it. Keeps /usr/share/zoneinfo
// (PostgreSQL uses the system tzdata) and /usr/lib/locale/C.utf8 (initdb --locale=C.UTF-8).
const STRIP = [
  "usr/share/doc",
  "usr/share/man",
  "usr/share/info",
  "usr/share/locale",
  "usr/share/lintian",
  "usr/share/common-licenses",
  "var/cache/apt",
  "var/lib/apt/lists",
  "var/cache/debconf/templates.dat-old",
  "var/cache/debconf/config.dat-old",
  "var/log",
];

const ROOTFS = {
  // Plain minbase: bash, coreutils, glibc, libstdc++ (enough for the host's node binary).
  base: { include: [], remove: [] },
  postgres: {
    include: ["postgresql-15"],
    // The Debian package's own cluster (the entrypoint initdb's $PGDATA instead), the LLVM JIT and
    // its libz3 (~140 MB; without llvmjit.so PostgreSQL silently runs without JIT), and the locale
    // sources of `locales` (initdb uses C.UTF-8, built into glibc).
    remove: [
      "var/lib/postgresql/15",
      "etc/postgresql/15",
      "usr/share/i18n",
      "usr/lib/x86_64-linux-gnu/libz3.so.4",
      "usr/lib/postgresql/15/lib/llvmjit.so",
      "usr/lib/postgresql/15/lib/llvmjit_types.bc",
      "usr/lib/postgresql/15/lib/bitcode",
      "usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
      "usr/lib/x86_64-linux-gnu/libLLVM-14.so",
      "usr/lib/llvm-14",
    ],
  },
  // PostgreSQL 17 for the `local-17` release (upgrades across a major, issue 18): Debian 13 is the
  // only suite packaging it. Same removals as postgres; trixie's JIT links LLVM 19.
  postgres17: {
    suite: "trixie",
    include: ["postgresql-17"],
    remove: [
      "var/lib/postgresql/17",
      "etc/postgresql/17",
      "usr/share/i18n",
      "usr/lib/x86_64-linux-gnu/libz3.so.4",
      "usr/lib/postgresql/17/lib/llvmjit.so",
      "usr/lib/postgresql/17/lib/llvmjit_types.bc",
      "usr/lib/postgresql/17/lib/bitcode",
      "usr/lib/x86_64-linux-gnu/libLLVM.so.19.1",
      "usr/lib/x86_64-linux-gnu/libLLVM-19.so",
      "usr/lib/llvm-19",
    ],
  },
  gateway: {
    include: ["nginx-light"],
    remove: ["etc/nginx/sites-enabled/default", "var/www/html"],
  },
  // The host ingress (ADR 0036): Debian's Caddy 2.6 (one static binary; its default site and unit
  // files are not used: the agent writes the config).
  ingress: {
    include: ["caddy"],
    remove: ["etc/caddy", "usr/share/caddy", "lib/systemd"],
  },
};

const POSTGRES_META_DIR = join(HERE, "postgres-meta");
const POSTGRES_META_VERSION = JSON.parse(readFileSync(join(POSTGRES_META_DIR, "package.json"), "utf8")).dependencies[
  "@supabase/postgres-meta"
];
const NODE_BIN = process.execPath;
const STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const pgPath = (major) => `/usr/lib/postgresql/${major}/bin:${STD_PATH}`;
// Every image ships /usr/local/bin/supamanager-healthcheck; a stack may override the timings.
const HEALTHCHECK =
  'HEALTHCHECK --interval=2s --timeout=5s --start-period=60s --retries=3 CMD ["supamanager-healthcheck"]';

// Image recipes: a rootfs, files copied in (src relative to images/), extra trees, `docker import -c`
// changes. Everything here (and the content of every file) feeds the tag hash.
/** A postgres image: one rootfs, one major; the entrypoint and health check are major-agnostic. */
const postgresImage = (rootfs, major) => ({
  rootfs,
  files: [
    ["postgres/entrypoint.sh", "/usr/local/bin/supamanager-postgres-entrypoint", 0o755],
    ["postgres/healthcheck.sh", "/usr/local/bin/supamanager-healthcheck", 0o755],
  ],
  mkdirs: [
    ["/var/lib/postgresql/data", 0o700, "postgres"],
    ["/docker-entrypoint-initdb.d", 0o755],
  ],
  changes: [
    `ENV PATH=${pgPath(major)}`,
    "ENV PGDATA=/var/lib/postgresql/data",
    "ENV LANG=C.UTF-8",
    "EXPOSE 5432",
    'ENTRYPOINT ["supamanager-postgres-entrypoint"]',
    HEALTHCHECK,
    'CMD ["postgres"]',
  ],
});

const IMAGES = {
  postgres: postgresImage("postgres", 15),
  "postgres-17": postgresImage("postgres17", 17),
  "postgres-meta": {
    rootfs: "base",
    files: [
      [NODE_BIN, "/usr/local/bin/node", 0o755],
      ["postgres-meta/healthcheck.mjs", "/usr/local/bin/supamanager-healthcheck", 0o755],
    ],
    trees: [["postgres-meta-modules", "/opt/postgres-meta"]],
    changes: [
      `ENV PATH=${STD_PATH}`,
      "ENV NODE_ENV=production",
      "ENV PG_META_HOST=0.0.0.0",
      "ENV PG_META_PORT=8080",
      "EXPOSE 8080",
      "USER nobody",
      "WORKDIR /opt/postgres-meta",
      'ENTRYPOINT ["/usr/local/bin/node", "/opt/postgres-meta/node_modules/@supabase/postgres-meta/dist/server/server.js"]',
      HEALTHCHECK,
    ],
    extra: { node: process.version, postgresMeta: POSTGRES_META_VERSION },
  },
  gateway: {
    rootfs: "gateway",
    files: [
      ["gateway/entrypoint.sh", "/usr/local/bin/supamanager-gateway-entrypoint", 0o755],
      ["gateway/healthcheck.sh", "/usr/local/bin/supamanager-healthcheck", 0o755],
    ],
    changes: [
      `ENV PATH=${STD_PATH}`,
      "ENV GATEWAY_PORT=8000",
      "EXPOSE 8000",
      'ENTRYPOINT ["supamanager-gateway-entrypoint"]',
      HEALTHCHECK,
    ],
  },
  // The host's reverse proxy (ADR 0036). The agent mounts its config directory on
  // /etc/supamanager-ingress and the certificate directory on /etc/supamanager-ingress-tls, and
  // reloads through the admin API (`caddy reload` inside the container, loopback only).
  ingress: {
    rootfs: "ingress",
    files: [["ingress/healthcheck.sh", "/usr/local/bin/supamanager-healthcheck", 0o755]],
    mkdirs: [
      ["/data", 0o700],
      ["/config", 0o700],
    ],
    changes: [
      `ENV PATH=${STD_PATH}`,
      "ENV XDG_DATA_HOME=/data",
      "ENV XDG_CONFIG_HOME=/config",
      "EXPOSE 8443",
      'ENTRYPOINT ["caddy"]',
      'CMD ["run", "--config", "/etc/supamanager-ingress/caddy.json"]',
      HEALTHCHECK,
    ],
  },
};

/**
 * Where rootfs trees are built and assembled: a tmpfs (/dev/shm) when it allows exec and has room,
 * since dpkg's fsyncs and unpacking ~10k files are several times slower on disk (extracting the
 * postgres rootfs: 0.3 s vs 5 s); else the cache directory. SUPAMANAGER_IMAGES_WORKDIR overrides.
 */
async function workRoot() {
  if (env.SUPAMANAGER_IMAGES_WORKDIR) return env.SUPAMANAGER_IMAGES_WORKDIR;
  const shm = "/dev/shm";
  try {
    const mount = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .find((f) => f[1] === shm);
    const fs = await statfs(shm);
    if (mount && !mount[3].split(",").includes("noexec") && fs.bavail * fs.bsize > 3e9) return shm;
  } catch {
    // no /dev/shm: use the disk
  }
  return CACHE;
}
let WORK = CACHE;

/** Cached artefacts: CACHE/<kind>-<key>.tar, written atomically. */
async function cachedTar(kind, key, produce) {
  const path = join(CACHE, `${kind}-${key}.tar`);
  if (existsSync(path)) {
    log(`${kind}: cached (${path})`);
    return path;
  }
  const tmp = `${path}.tmp-${process.pid}`;
  await produce(tmp);
  await rename(tmp, path);
  return path;
}

/** rm -rf that first unmounts anything left mounted below `dir` (an interrupted debootstrap). */
async function removeTree(dir) {
  if (!existsSync(dir)) return;
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((m) => m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync("umount", ["-l", m], { stdio: "ignore" });
  await run("rm", ["-rf", "--one-file-system", dir]);
}

const suiteOf = (name) => ROOTFS[name].suite ?? SUITE;
const mirrorOf = (name) => debianMirror(suiteOf(name));

function rootfsKey(name) {
  const r = ROOTFS[name];
  // The field is still called SUITE so that the bookworm rootfs kept their keys (and tags).
  const recipe = { ROOTFS_REV, SUITE: suiteOf(name), mirror: mirrorOf(name), include: r.include, remove: r.remove };
  return sha256(JSON.stringify({ ...recipe, STRIP })).slice(0, 16);
}

async function buildRootfs(name) {
  return cachedTar(`rootfs-${name}`, rootfsKey(name), async (out) => {
    const r = ROOTFS[name];
    const dir = await mkdtemp(join(WORK, `supamanager-work-rootfs-${name}-`));
    try {
      const args = ["--variant=minbase"];
      if (r.include.length) args.push(`--include=${r.include.join(",")}`);
      await timed(`debootstrap ${name}${r.include.length ? ` (+${r.include.join(",")})` : ""}`, () =>
        run("debootstrap", [...args, suiteOf(name), dir, mirrorOf(name)]),
      );
      await timed(`strip+tar rootfs ${name}`, async () => {
        for (const p of [...STRIP, ...r.remove]) await rm(join(dir, p), { recursive: true, force: true });
        for (const p of ["var/log", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial"]) {
          await mkdir(join(dir, p), { recursive: true });
        }
        // The host's resolv.conf/hostname were copied in; Docker mounts its own over them anyway.
        await writeFile(join(dir, "etc/resolv.conf"), "");
        await writeFile(join(dir, "etc/hostname"), "localhost\n");
        await chmod(dir, 0o755); // the tar's "./" entry: mkdtemp made it 0700
        await run("tar", ["--numeric-owner", "-C", dir, "-cf", out, "."]);
      });
    } finally {
      await removeTree(dir);
    }
  });
}

async function buildPostgresMetaModules() {
  const key = sha256(
    JSON.stringify({
      node: process.version,
      pkg: fileHash(join(POSTGRES_META_DIR, "package.json")),
      lock: fileHash(join(POSTGRES_META_DIR, "package-lock.json")),
    }),
  ).slice(0, 16);
  return cachedTar("postgres-meta-modules", key, async (out) => {
    const dir = await mkdtemp(join(WORK, "supamanager-work-postgres-meta-"));
    try {
      await copyFile(join(POSTGRES_META_DIR, "package.json"), join(dir, "package.json"));
      await copyFile(join(POSTGRES_META_DIR, "package-lock.json"), join(dir, "package-lock.json"));
      await timed(`npm ci @supabase/postgres-meta@${POSTGRES_META_VERSION}`, () =>
        run("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"], {
          cwd: dir,
          extraEnv: { npm_config_update_notifier: "false" },
        }),
      );
      await chmod(dir, 0o755); // mkdtemp made it 0700: the image runs as nobody
      await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", dir, "-cf", out, "."]);
    } finally {
      await removeTree(dir);
    }
  });
}

/** The tag the built-in `local` release refers to; it follows the last build of the image. */
const localAlias = (name) => `supamanager/${name}:local`;

function imageTag(name) {
  const img = IMAGES[name];
  const files = img.files.map(([src, dest, mode]) => [dest, mode, fileHash(resolve(HERE, src))]);
  const recipe = {
    IMAGE_REV,
    rootfs: rootfsKey(img.rootfs),
    files,
    mkdirs: img.mkdirs ?? [],
    trees: img.trees ?? [],
    changes: img.changes,
    extra: img.extra ?? {},
    lock: img.trees ? fileHash(join(POSTGRES_META_DIR, "package-lock.json")) : null,
  };
  return `supamanager/${name}:${sha256(JSON.stringify(recipe)).slice(0, 12)}`;
}

async function buildImage(name, tag, inputs) {
  const img = IMAGES[name];
  const dir = await mkdtemp(join(WORK, `supamanager-work-image-${name}-`));
  try {
    await timed(`image ${name}: assemble rootfs`, async () => {
      await run("tar", ["--numeric-owner", "-xpf", inputs.rootfs, "-C", dir]);
      for (const [tree, dest] of img.trees ?? []) {
        await mkdir(join(dir, dest), { recursive: true });
        await run("tar", ["--numeric-owner", "-xpf", inputs[tree], "-C", join(dir, dest)]);
        await chmod(join(dir, dest), 0o755);
      }
      for (const [src, dest, mode] of img.files) {
        await mkdir(dirname(join(dir, dest)), { recursive: true });
        await cp(resolve(HERE, src), join(dir, dest), { dereference: true });
        await chmod(join(dir, dest), mode);
      }
      for (const [path, mode, owner] of img.mkdirs ?? []) {
        await mkdir(join(dir, path), { recursive: true });
        await chmod(join(dir, path), mode);
        if (owner) {
          const entry = readFileSync(join(dir, "etc/passwd"), "utf8")
            .split("\n")
            .find((l) => l.startsWith(`${owner}:`));
          if (!entry) throw new Error(`no user ${owner} in the ${name} rootfs`);
          const [, , uid, gid] = entry.split(":");
          await chown(join(dir, path), Number(uid), Number(gid));
        }
      }
    });
    const changes = [...img.changes, `LABEL org.supamanager.image=${name} org.supamanager.recipe=${tag.split(":")[1]}`];
    const importArgs = [...changes.flatMap((c) => ["-c", c]), "-m", `supamanager ${name}`];
    await timed(`image ${name}: tar | docker import`, () =>
      run("bash", [
        "-o",
        "pipefail",
        "-c",
        'dir="$1" tag="$2"; shift 2; tar --numeric-owner -C "$dir" -c . | docker import "$@" - "$tag"',
        "import",
        dir,
        tag,
        ...importArgs,
      ]),
    );
  } finally {
    await removeTree(dir);
  }
}

async function ensureTools() {
  const dockerOk = ok("docker", ["info"]);
  const debootstrapOk = ok("sh", ["-c", "command -v debootstrap"]);
  if (dockerOk && debootstrapOk) return;
  log("docker or debootstrap missing: running .ci/start-docker");
  await timed("start-docker", () => run("bash", [join(ROOT, ".ci/start-docker")], { quiet: false }));
}

/** Re-runs this script under flock so two builds never race on the cache or the tags. */
function underLock() {
  if (env.SUPAMANAGER_IMAGES_LOCKED) return false;
  spawnSync("mkdir", ["-p", CACHE]);
  const r = spawnSync("flock", [join(CACHE, ".lock"), process.execPath, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, SUPAMANAGER_IMAGES_LOCKED: "1" },
  });
  if (r.error) return false; // no flock: run unlocked
  process.exit(r.status ?? 1);
}

async function main() {
  const args = process.argv.slice(2);
  const prune = args.includes("--prune");
  const names = args.filter((a) => !a.startsWith("--"));
  for (const n of names)
    if (!IMAGES[n]) throw new Error(`unknown image ${n} (known: ${Object.keys(IMAGES).join(", ")})`);
  const wanted = names.length ? names : Object.keys(IMAGES);
  if (process.getuid && process.getuid() !== 0) throw new Error("needs root (debootstrap, docker)");

  underLock();
  await mkdir(CACHE, { recursive: true });
  await ensureTools();
  WORK = await workRoot();
  await mkdir(WORK, { recursive: true });
  // Leftovers of an interrupted run (we hold the lock: no other build is using them).
  for (const entry of await readdir(CACHE)) {
    if (entry.includes(".tmp-")) await rm(join(CACHE, entry), { force: true });
  }
  for (const root of new Set([CACHE, WORK])) {
    for (const entry of await readdir(root)) {
      if (entry.startsWith("supamanager-work-")) await removeTree(join(root, entry));
    }
  }

  const suites = [...new Set(Object.keys(ROOTFS).map((r) => `${suiteOf(r)} from ${mirrorOf(r)}`))];
  log(`suites ${suites.join(", ")}; cache ${CACHE}, work dir ${WORK}, node ${process.version}`);

  // Entries of images not built this time (a subset was asked for) are kept from the last manifest.
  const previous = existsSync(MANIFEST) ? JSON.parse(readFileSync(MANIFEST, "utf8")) : {};
  const manifest = Object.fromEntries(Object.entries(previous).filter(([name]) => IMAGES[name]));
  const todo = [];
  for (const name of wanted) {
    const tag = imageTag(name);
    manifest[name] = tag;
    if (ok("docker", ["image", "inspect", tag])) log(`${name}: ${tag} exists, skipped`);
    else todo.push([name, tag]);
  }

  if (todo.length) {
    // Inputs in parallel (debootstraps are network + dpkg bound), then the images one by one.
    const inputs = {};
    const jobs = new Map();
    for (const [name] of todo) {
      const img = IMAGES[name];
      if (!jobs.has(`rootfs:${img.rootfs}`)) jobs.set(`rootfs:${img.rootfs}`, buildRootfs(img.rootfs));
      for (const [tree] of img.trees ?? []) {
        if (!jobs.has(tree)) jobs.set(tree, buildPostgresMetaModules());
      }
    }
    const results = await Promise.allSettled(jobs.values());
    const failed = results.filter((r) => r.status === "rejected");
    if (failed.length) throw failed[0].reason;
    [...jobs.keys()].forEach((k, i) => {
      inputs[k] = results[i].value;
    });
    for (const [name, tag] of todo) {
      const img = IMAGES[name];
      const imgInputs = { rootfs: inputs[`rootfs:${img.rootfs}`] };
      for (const [tree] of img.trees ?? []) imgInputs[tree] = inputs[tree];
      await timed(`image ${name} total`, () => buildImage(name, tag, imgInputs));
    }
  }

  const sorted = Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => a.localeCompare(b)));
  await writeFile(MANIFEST, `${JSON.stringify(sorted, null, 2)}\n`);
  // The stable names the `local` release runs (control-plane/src/releases/local.ts).
  for (const name of wanted) {
    await run("docker", ["tag", sorted[name], localAlias(name)]);
    log(`${name}: tagged ${localAlias(name)}`);
  }

  if (prune) {
    const keep = new Set([...Object.values(sorted), ...Object.keys(IMAGES).map(localAlias)]);
    const listed = spawnSync("docker", ["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "supamanager/*"], {
      encoding: "utf8",
    }).stdout;
    for (const ref of listed.split("\n").filter(Boolean)) {
      if (!keep.has(ref)) {
        log(`prune ${ref}`);
        spawnSync("docker", ["image", "rm", ref], { stdio: "ignore" });
      }
    }
  }

  for (const name of wanted) {
    const size = spawnSync("docker", ["image", "inspect", "--format", "{{.Size}}", sorted[name]], { encoding: "utf8" });
    log(`${name}: ${sorted[name]} (${(Number(size.stdout) / 1e6).toFixed(0)} MB)`);
  }
  if (timings.length) {
    log("timings:");
    for (const [label, ms] of timings) console.log(`  ${secs(ms).padStart(7)}  ${label}`);
  }
  log(`done in ${secs(Date.now() - started)}; manifest ${MANIFEST}`);
}

main().catch((err) => {
  console.error(`[images] FAILED: ${err.stack || err.message}`);
  process.exit(1);
});
