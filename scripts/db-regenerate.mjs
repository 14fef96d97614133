#!/usr/bin/env node
// Regenerate the newest, not-yet-shipped migration from the schema: drop migrations numbered
// >= <index> (SQL, snapshot and journal entry), then run drizzle-kit generate with <name>.
// Usage: node scripts/db-regenerate.mjs 2 stack   (run under `flock /tmp/db-generate.lock` when
// several people edit the schema at once). Never use it on a migration that has shipped.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const [indexArg, name] = process.argv.slice(2);
const index = Number(indexArg);
if (!Number.isInteger(index) || index < 1 || !/^[a-z0-9_]+$/.test(name ?? "")) {
  console.error("usage: node scripts/db-regenerate.mjs <index ≥ 1> <name>");
  process.exit(1);
}
const journalPath = "migrations/meta/_journal.json";
const journal = JSON.parse(readFileSync(journalPath, "utf8"));
journal.entries = journal.entries.filter((e) => e.idx < index);
writeFileSync(journalPath, `${JSON.stringify(journal, null, 2)}\n`);
for (const f of readdirSync("migrations")) {
  const n = Number(f.slice(0, 4));
  if (f.endsWith(".sql") && n >= index) rmSync(`migrations/${f}`);
}
for (const f of readdirSync("migrations/meta")) {
  const n = Number(f.slice(0, 4));
  if (f.endsWith("_snapshot.json") && n >= index) rmSync(`migrations/meta/${f}`);
}
execFileSync("npx", ["drizzle-kit", "generate", "--name", name], { stdio: "inherit" });
