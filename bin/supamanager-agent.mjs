#!/usr/bin/env node
// `npx supamanager-agent …` from the repository root: the host agent (host-agent/, docs/agent.md).
import { runBuilt } from "./run-workspace-bin.mjs";

await runBuilt("host-agent/dist/cli.js");
