#!/usr/local/bin/node
// supamanager-healthcheck: healthy when postgres-meta's /health answers 200 (the image has no curl).
const port = process.env.PG_META_PORT || "8080";
fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) }).then(
  (res) => process.exit(res.ok ? 0 : 1),
  () => process.exit(1),
);
