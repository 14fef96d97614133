#!/usr/bin/env node
// Build the AWS Lambda artifact (docs/deploy-lambda.md): one ES module bundling the control
// plane and its dependencies, plus the SQL migrations next to it.
//   npm run lambda:build   →   control-plane/dist/lambda/{index.mjs, migrations/}
// Zip that directory; the handlers are index.handler (HTTP API), index.agentHandler (WebSocket
// API), index.migrateHandler (deploy step) and index.sweepHandler (schedule).
import { cpSync, mkdirSync, rmSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = `${root}control-plane/dist/lambda`;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [`${root}control-plane/src/entry/lambda.ts`],
  outfile: `${out}/index.mjs`,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  // The workspace package from source, so no prior `npm run build` is needed.
  alias: { "@supamanager/shared": `${root}shared/src/index.ts` },
  // pg's optional native binding is never used.
  external: ["pg-native"],
  // CommonJS dependencies call require() for Node's built-ins; an ES module has none of its own.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
  },
  legalComments: "none",
  logLevel: "warning",
});
cpSync(`${root}migrations`, `${out}/migrations`, { recursive: true });
const kib = Math.round(statSync(`${out}/index.mjs`).size / 1024);
console.log(`built ${out}/index.mjs (${kib} KiB) and migrations/`);
