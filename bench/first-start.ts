/**
 * `npm start` on a fresh data directory: time to the ready line, to `/health` answering 200, and
 * to "Local Docker host is online" (the local host enrolled and connected, ADR 0019), with the
 * embedded database's share (`open_ms`: PGlite's start, `migrate_ms`: migrations, from the
 * entry's "database ready" log line). Then the same data directory started again (a restart), and
 * a fresh one once more with the build's PGlite seed moved aside (initdb, as before the seed).
 *
 *   npm run build && node --import tsx bench/first-start.ts [--runs 3]
 *
 * Runs the built entry (what `npm start` runs after its build step) with SUPAMANAGER_RELEASE=local;
 * the local release's images must exist already (`npm run images:test`), so image builds are not
 * timed. Needs a Docker engine for the "online" figure. Writes bench/results/first-start.json.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ENTRY, REPO_ROOT } from "../test/support/process.js";
import { numberOptions } from "./support.js";

const { runs } = numberOptions({ runs: "3" });

interface Sample {
  ready_ms: number;
  health_ms: number;
  online_ms: number | null;
  open_ms: number | null;
  migrate_ms: number | null;
}

async function startOnce(dataDir: string): Promise<Sample> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [ENTRY], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: "0",
      HOST: "127.0.0.1",
      SUPAMANAGER_DATA_DIR: dataDir,
      SUPAMANAGER_RELEASE: "local",
      SUPAMANAGER_LOCAL_HOST: "auto",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const sample: Partial<Sample> = { online_ms: null, open_ms: null, migrate_ms: null };
  let url: string | undefined;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no local host online within 300 s")), 300_000);
    const finish = () => {
      clearTimeout(timer);
      resolve();
    };
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (!line.includes('"msg":"database ready"')) return;
      const fields = JSON.parse(line) as { open_ms?: number; migrate_ms?: number };
      sample.open_ms = fields.open_ms ?? null;
      sample.migrate_ms = fields.migrate_ms ?? null;
    });
    createInterface({ input: child.stderr }).on("line", (line) => {
      const ready = /SupaManager is running at (\S+)/.exec(line);
      if (ready?.[1]) {
        sample.ready_ms = performance.now() - t0;
        url = ready[1];
        void pollHealth(url, t0).then((ms) => {
          sample.health_ms = ms;
        });
      }
      if (line.includes("Local Docker host is online")) {
        sample.online_ms = performance.now() - t0;
        finish();
      }
      if (line.includes("No Docker engine is reachable")) finish();
    });
    child.once("exit", (code) => reject(new Error(`the entry exited with ${code}`)));
  });
  await done;
  while (sample.health_ms === undefined) await new Promise((r) => setTimeout(r, 20));
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
  return sample as Sample;
}

async function pollHealth(url: string, t0: number): Promise<number> {
  for (;;) {
    const ok = await fetch(`${url}/health`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const summary = (samples: Sample[]) =>
  Object.fromEntries(
    (["ready_ms", "health_ms", "online_ms", "open_ms", "migrate_ms"] as const).map((k) => [
      k,
      Math.round(median(samples.map((s) => s[k] ?? Number.NaN))),
    ]),
  );

const SEED = join(REPO_ROOT, "control-plane/dist/pglite-seed.tar.gz");
if (!existsSync(SEED)) throw new Error(`${SEED} is missing: run npm run build first`);

async function freshStart(withSeed: boolean): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), "sm-first-start-"));
  if (!withSeed) renameSync(SEED, `${SEED}.aside`);
  try {
    return await startOnce(dir);
  } finally {
    if (!withSeed) renameSync(`${SEED}.aside`, SEED);
    rmSync(dir, { recursive: true, force: true });
  }
}

const fresh: Sample[] = [];
const restart: Sample[] = [];
const noSeed: Sample[] = [];
const load = loadavg()[0];
for (let i = 0; i < runs; i++) {
  const dir = mkdtempSync(join(tmpdir(), "sm-first-start-"));
  try {
    fresh.push(await startOnce(dir));
    restart.push(await startOnce(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  noSeed.push(await freshStart(false));
  console.log(
    `run ${i + 1}/${runs}: fresh`,
    fresh.at(-1),
    "restart",
    restart.at(-1),
    "fresh without seed",
    noSeed.at(-1),
  );
}
const result = {
  when: new Date().toISOString(),
  runs,
  load1_at_start: load,
  load1_at_end: loadavg()[0],
  fresh: summary(fresh),
  restart: summary(restart),
  fresh_without_seed: summary(noSeed),
  samples: { fresh, restart, fresh_without_seed: noSeed },
};
console.log(
  JSON.stringify(
    {
      fresh: result.fresh,
      restart: result.restart,
      fresh_without_seed: result.fresh_without_seed,
      load1_at_start: load,
    },
    null,
    2,
  ),
);
mkdirSync(join(REPO_ROOT, "bench/results"), { recursive: true });
writeFileSync(join(REPO_ROOT, "bench/results/first-start.json"), `${JSON.stringify(result, null, 2)}\n`);
