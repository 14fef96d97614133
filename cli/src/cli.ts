#!/usr/bin/env node
import { main } from "./main.js";

main(process.argv.slice(2)).then((code) => {
  // Let stdout drain (it may be a pipe) before exiting.
  process.stdout.write("", () => process.exit(code));
});
