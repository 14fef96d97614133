import { writePgliteSeed } from "../db/pglite-seed.js";

/** Build step (control-plane's `npm run build`): write dist/pglite-seed.tar.gz. */
const started = performance.now();
await writePgliteSeed();
process.stdout.write(`pglite seed written in ${Math.round(performance.now() - started)} ms\n`);
