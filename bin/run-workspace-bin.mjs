// Shared by the root package's bins (`npx supamanager`, `npx supamanager-agent` from the
// repository root): run a workspace's built CLI, building the workspace first when it has not
// been built yet (right after `npm ci`), so the commands the docs show work as printed.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Import `relative` (a built file under the repository root), building everything first if it is missing. */
export async function runBuilt(relative) {
  const file = new URL(`../${relative}`, import.meta.url);
  if (!existsSync(file)) {
    process.stderr.write(`${relative} is not built yet: running \`npm run build\` once (about a minute)…\n`);
    const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0 || !existsSync(file)) {
      process.stderr.write(`\`npm run build\` failed (exit ${r.status ?? r.signal}); fix the error above and retry.\n`);
      process.exit(1);
    }
  }
  await import(file.href);
}
