#!/usr/bin/env node
// `npx supamanager …` from the repository root: the operator CLI (cli/, docs/cli.md).
import { runBuilt } from "./run-workspace-bin.mjs";

await runBuilt("cli/dist/cli.js");
