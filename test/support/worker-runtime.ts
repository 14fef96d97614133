import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";
import { wranglerSettings } from "./worker-bundle.js";

/** The test secrets the Worker gets as bindings (same values as the in-process harness). */
export const WORKER_SECRETS = {
  SUPAMANAGER_JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789",
  SUPAMANAGER_ENCRYPTION_KEY: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
  SUPAMANAGER_RELEASE: "local",
};

export interface LocalWorker {
  /** http://127.0.0.1:<port> of workerd. */
  url: string;
  mf: Miniflare;
  /**
   * Stop workerd and start it again on the same port over the same Durable Object storage:
   * every agent socket closes (as on a redeploy) and every object starts from scratch.
   */
  restart(): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * The bundled Worker (test/support/worker-bundle.ts) in real workerd through Miniflare, with the
 * HOSTS Durable Object binding of wrangler.toml and `bindings` as its variables and secrets.
 */
export async function startLocalWorker(scriptPath: string, bindings: Record<string, string>): Promise<LocalWorker> {
  const persist = mkdtempSync(join(tmpdir(), "supamanager-do-"));
  const options = (port: number) => ({
    modules: true,
    scriptPath,
    // Module names are paths relative to this root; the bundle lives outside the repository.
    modulesRoot: dirname(scriptPath),
    ...wranglerSettings(),
    bindings,
    durableObjects: { HOSTS: { className: "HostObject", useSQLite: true } },
    durableObjectsPersist: persist,
    host: "127.0.0.1",
    port,
    cf: false,
  });
  let mf = new Miniflare(options(0));
  let url = (await mf.ready).origin;
  // A restart listens on the same port, as a redeploy keeps the URL agents were given.
  const port = Number(new URL(url).port);
  const worker: LocalWorker = {
    get url() {
      return url;
    },
    get mf() {
      return mf;
    },
    async restart() {
      await mf.dispose();
      mf = new Miniflare(options(port));
      url = (await mf.ready).origin;
    },
    async dispose() {
      await mf.dispose();
      rmSync(persist, { recursive: true, force: true });
    },
  };
  return worker;
}
