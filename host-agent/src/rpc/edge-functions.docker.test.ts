import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  EDGE_FUNCTIONS_SERVICE,
  type EdgeFunctionWrite,
  newProjectRef,
  PROTOCOL_VERSION,
  type Rpc,
} from "@supamanager/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { DockerRuntime, PROJECT_LABEL, SERVICE_LABEL } from "../runtime/docker.js";
import { run } from "../runtime/exec.js";
import { entryModule } from "./edge-functions.js";
import { RpcForwarder } from "./forwarder.js";

/**
 * The edge-functions rpc on real parts: a container labelled as service `functions` of a Compose
 * project with a named volume at the edge runtime's functions directory (the local PostgreSQL
 * test image, sleeping: any image with `rm` does), written through Docker's archive API and
 * restarted by the agent's own forwarder. In CI a missing engine or image manifest is a failure.
 */
const REPO_ROOT = join(import.meta.dirname, "../../..");
const MANIFEST = join(REPO_ROOT, "images/manifest.local.json");
const dockerUp = spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0;
const inCi = process.env.CI === "true";
const runnable = dockerUp && existsSync(MANIFEST);
if (!runnable && !inCi) {
  console.warn(
    "\n⚠️  host-agent/src/rpc/edge-functions.docker.test.ts SKIPPED: needs `docker info` and images/manifest.local.json (npm run images:test).\n",
  );
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe.skipIf(!runnable && !inCi)("edge-functions rpc on a real container", () => {
  const ref = newProjectRef();
  const other = newProjectRef();
  const name = `sm-fn-test-${ref}`;
  const volume = `sm-fn-test-${ref}_functions`;
  let forwarder: RpcForwarder;
  let n = 0;

  const sh = async (script: string) => (await run("docker", ["exec", name, "sh", "-c", script])).trim();
  const startedAt = async () => (await run("docker", ["inspect", "-f", "{{.State.StartedAt}}", name])).trim();
  const rpc = (over: Partial<Rpc>): Rpc => ({
    v: PROTOCOL_VERSION,
    type: "rpc",
    id: `rpc-${++n}`,
    ref,
    service: EDGE_FUNCTIONS_SERVICE,
    method: "PUT",
    path: "/functions/hello",
    headers: {},
    timeoutMs: 60_000,
    ...over,
  });
  const deploy = (files: EdgeFunctionWrite["files"], entrypoint: string, verifyJwt = false) =>
    forwarder.handle(rpc({ body: { service: "functions", entrypoint, verifyJwt, files } }));

  beforeAll(async () => {
    if (!dockerUp) throw new Error("CI=true and no Docker engine answers `docker info`");
    if (!existsSync(MANIFEST)) throw new Error(`CI=true and ${MANIFEST} is missing (npm run images:test)`);
    const image = (JSON.parse(readFileSync(MANIFEST, "utf8")) as Record<string, string>).postgres;
    if (!image) throw new Error("images/manifest.local.json has no postgres image");
    await run("docker", [
      "run",
      "-d",
      "--name",
      name,
      "--label",
      `${PROJECT_LABEL}=${ref}`,
      "--label",
      `${SERVICE_LABEL}=functions`,
      "-v",
      `${volume}:/home/deno/functions`,
      "--entrypoint",
      "sleep",
      image,
      "infinity",
    ]);
    const runtime = await DockerRuntime.create({ logger: memoryLogger(), composeKind: "v2" });
    forwarder = new RpcForwarder({
      logger: memoryLogger(),
      edgeFunctions: runtime,
      project: async (r) => (r === ref || r === other ? { desiredState: "running", endpoints: {} } : null),
    });
  });
  afterAll(async () => {
    await run("docker", ["rm", "-f", name]).catch(() => undefined);
    await run("docker", ["volume", "rm", "-f", volume]).catch(() => undefined);
  });

  it("deploy: the files under <slug>/src, an index.ts importing the entrypoint, function.json; the runtime restarted", async () => {
    const before = await startedAt();
    const res = await deploy(
      [
        { path: "supabase/functions/hello/index.ts", content: b64('import { cors } from "../_shared/cors.ts";\n') },
        { path: "supabase/functions/_shared/cors.ts", content: b64("export const cors = {};\n") },
      ],
      "supabase/functions/hello/index.ts",
    );
    expect(res, JSON.stringify(res)).toMatchObject({ status: 200, body: { restarted: true } });
    expect(await sh("cat /home/deno/functions/hello/index.ts")).toBe(
      entryModule("supabase/functions/hello/index.ts").trim(),
    );
    expect(await sh("cat /home/deno/functions/hello/src/supabase/functions/_shared/cors.ts")).toBe(
      "export const cors = {};",
    );
    expect(JSON.parse(await sh("cat /home/deno/functions/hello/function.json"))).toEqual({ verify_jwt: false });
    expect(await startedAt()).not.toBe(before);
  });

  it("a redeploy replaces the function's files (a file left out is gone)", async () => {
    const res = await deploy(
      [{ path: "index.ts", content: b64("Deno.serve(() => new Response('v2'));\n") }],
      "index.ts",
      true,
    );
    expect(res.status).toBe(200);
    expect(await sh("find /home/deno/functions/hello -type f | sort")).toBe(
      [
        "/home/deno/functions/hello/function.json",
        "/home/deno/functions/hello/index.ts",
        "/home/deno/functions/hello/src/index.ts",
      ].join("\n"),
    );
    expect(JSON.parse(await sh("cat /home/deno/functions/hello/function.json"))).toEqual({ verify_jwt: true });
  });

  it("secrets: .secrets.json with the values, readable by root only", async () => {
    const res = await forwarder.handle(
      rpc({ path: "/secrets", body: { service: "functions", secrets: { STRIPE_KEY: "sk_test_1", PEM: "a\nb" } } }),
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(await sh("cat /home/deno/functions/.secrets.json"))).toEqual({
      STRIPE_KEY: "sk_test_1",
      PEM: "a\nb",
    });
    expect(await sh("stat -c %a /home/deno/functions/.secrets.json")).toBe("600");
  });

  it("delete removes the function's directory and leaves the rest", async () => {
    const res = await forwarder.handle(rpc({ method: "DELETE", body: { service: "functions" } }));
    expect(res.status).toBe(200);
    expect(await sh("ls -A /home/deno/functions")).toBe(".secrets.json");
  });

  it("refuses paths that leave the function, bad slugs and other methods; another project's container is never used", async () => {
    for (const path of ["../x.ts", "a/../../x.ts", "/etc/passwd", "a//b.ts", "./a.ts"]) {
      const res = await deploy([{ path, content: b64("x") }], path);
      expect(res.code, path).toBe("refused");
    }
    expect((await forwarder.handle(rpc({ path: "/functions/..%2Fx" }))).code).toBe("refused");
    expect((await forwarder.handle(rpc({ method: "GET" }))).code).toBe("refused");
    // `other` is a project this agent runs, but it has no functions container: 409, nothing written.
    const res = await forwarder.handle(
      rpc({
        ref: other,
        body: {
          service: "functions",
          entrypoint: "index.ts",
          verifyJwt: true,
          files: [{ path: "index.ts", content: b64("x") }],
        },
      }),
    );
    expect(res.status).toBe(409);
    expect(await sh("ls -A /home/deno/functions")).toBe(".secrets.json");
  });
});
