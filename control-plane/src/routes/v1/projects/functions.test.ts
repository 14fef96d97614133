import type { Rpc } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog, edgeFunctionSecrets } from "../../../db/schema.js";
import { PRODUCTION_RELEASE_NAME } from "../../../releases/production/index.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { expectMatchesOperation } from "../../../test-support/openapi.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * Edge Functions and function secrets against the real control plane, a fake agent standing in
 * for the project's host (the agent's side of the edge-functions rpc runs on real Docker in
 * host-agent/src/rpc/edge-functions.docker.test.ts). Requests are the ones the clients send:
 *
 * - Studio (apps/studio/data/edge-functions/edge-functions-deploy-mutation.ts): POST
 *   /v1/projects/{ref}/functions/deploy?slug=…, FormData with `metadata` (JSON string) and one
 *   `file` Blob (text/plain) per file, named by its path; edge-function-body-query.ts: GET
 *   …/functions/{slug}/body with Accept: multipart/form-data, a non-file part read as metadata
 *   (deno2_entrypoint_path) and file parts by filename; edge-functions-query.ts: GET …/functions.
 * - The CLI (supabase/cli internal/functions/deploy/upload.go): the same endpoint with a Go
 *   multipart form: a `metadata` field {entrypoint_path, import_map_path, name, static_patterns,
 *   verify_jwt}, then `file` parts whose filenames are project-relative paths
 *   (supabase/functions/<slug>/index.ts, supabase/functions/_shared/…), Content-Type
 *   application/octet-stream; several functions → bundleOnly=true, then PUT …/functions.
 * Answers are held to api_v1_openapi.json (../shared/contracts).
 */

let t: TestApp;
let owner: TestUser;
let developer: TestUser;
let readOnly: TestUser;
let stranger: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
let rpcs: Rpc[];
let answer: (rpc: Rpc) => Record<string, unknown> | null;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: PRODUCTION_RELEASE_NAME });
  owner = await signUpAndLogin(t);
  developer = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, developer, "developer");
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  answer = () => ({ status: 200, body: { restarted: true }, contentType: "application/json" });
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    return answer(rpc);
  };
  ref = (await createProjectViaApi(t, owner, org, { desired_instance_size: "medium" })).ref;
  await conn.settle();
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  const services = Object.keys(t.deps.releases.get(PRODUCTION_RELEASE_NAME)?.services ?? {});
  await conn.send({
    type: "health",
    ref,
    services: services.map((name) => ({ name, state: "running", health: "healthy" })),
  });
});
afterEach(async () => {
  await t.close();
});

const HELLO = `Deno.serve(async (req) => new Response(JSON.stringify({ message: "Hello" })))\n`;

/** Studio's deploy: FormData, metadata as a JSON string, files as text/plain Blobs. */
function studioForm(files: { name: string; content: string }[], metadata: Record<string, unknown>) {
  const form = new FormData();
  form.append("metadata", JSON.stringify(metadata));
  for (const f of files) form.append("file", new Blob([f.content], { type: "text/plain" }), f.name);
  return form;
}

/** The CLI's deploy, byte for byte as Go's multipart writer frames it. */
function cliBody(boundary: string, metadata: Record<string, unknown>, files: { name: string; content: string }[]) {
  let s = `--${boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n${JSON.stringify(metadata)}\n`;
  for (const f of files) {
    s += `\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${f.name}"\r\nContent-Type: application/octet-stream\r\n\r\n${f.content}`;
  }
  return `${s}\r\n--${boundary}--\r\n`;
}

const deployStudio = (
  slug: string,
  files: { name: string; content: string }[],
  meta: Record<string, unknown>,
  user = owner,
) =>
  t.request(`/v1/projects/${ref}/functions/deploy?slug=${slug}`, {
    method: "POST",
    token: user.token,
    body: studioForm(files, meta),
  });

const json = async <T>(res: Response) => (await res.json()) as T;

describe("Edge Functions: deploy, list, details, body, update, delete", () => {
  it("Studio's editor deploy: delivered to the agent, then recorded; list, details and body answer it", async () => {
    const res = await deployStudio("hello-world", [{ name: "index.ts", content: HELLO }], {
      entrypoint_path: "index.ts",
      name: "hello-world",
      verify_jwt: true,
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const fn = await json<Record<string, unknown>>(res);
    expectMatchesOperation("POST", "/v1/projects/{ref}/functions/deploy", 201, fn);
    expect(fn).toMatchObject({
      slug: "hello-world",
      name: "hello-world",
      version: 1,
      status: "ACTIVE",
      verify_jwt: true,
    });

    expect(rpcs).toHaveLength(1);
    expect(rpcs[0]).toMatchObject({
      ref,
      service: "edge-functions",
      method: "PUT",
      path: "/functions/hello-world",
      body: {
        service: "functions",
        entrypoint: "index.ts",
        verifyJwt: true,
        files: [{ path: "index.ts", content: Buffer.from(HELLO).toString("base64") }],
      },
    });

    const list = await t.request(`/v1/projects/${ref}/functions`, { token: readOnly.token });
    expect(list.status).toBe(200);
    const items = await json<unknown[]>(list);
    expectMatchesOperation("GET", "/v1/projects/{ref}/functions", 200, items);
    expect(items).toEqual([fn]);

    const one = await t.request(`/v1/projects/${ref}/functions/hello-world`, { token: readOnly.token });
    expectMatchesOperation("GET", "/v1/projects/{ref}/functions/{function_slug}", 200, await one.clone().json());
    expect(await one.json()).toEqual(fn);

    // The body as Studio reads it: multipart, a metadata part and one file part per file.
    const body = await t.request(`/v1/projects/${ref}/functions/hello-world/body`, {
      token: readOnly.token,
      headers: { accept: "multipart/form-data" },
    });
    expect(body.status).toBe(200);
    expect(body.headers.get("content-type")).toMatch(/^multipart\/form-data; boundary=/);
    const form = await body.formData();
    expect(JSON.parse(form.get("metadata") as string)).toMatchObject({ deno2_entrypoint_path: "index.ts" });
    const file = form.get("file") as File;
    expect(file.name).toBe("index.ts");
    expect(await file.text()).toBe(HELLO);

    const audit = await t.deps.database.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.action, "project.edge_function.deploy"));
    expect(audit.map((a) => a.target)).toEqual(["hello-world"]);
  });

  it("the CLI's deploy (--use-api): project-relative paths with a shared module; redeploy bumps the version", async () => {
    const boundary = "cliboundary123";
    const meta = {
      entrypoint_path: "supabase/functions/hello/index.ts",
      import_map_path: "",
      name: "hello",
      static_patterns: ["supabase/functions/hello/*.html"],
      verify_jwt: false,
    };
    const files = [
      { name: "supabase/functions/hello/page.html", content: "<p>hi</p>" },
      { name: "supabase/functions/hello/index.ts", content: 'import { cors } from "../_shared/cors.ts";\n' },
      { name: "supabase/functions/_shared/cors.ts", content: "export const cors = {};\n" },
    ];
    const send = () =>
      t.request(`/v1/projects/${ref}/functions/deploy?slug=hello`, {
        method: "POST",
        token: developer.token,
        headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        body: cliBody(boundary, meta, files),
      });
    const first = await send();
    expect(first.status, await first.clone().text()).toBe(201);
    const second = await send();
    expect(second.status).toBe(201);
    const fn = await json<Record<string, unknown>>(second);
    expectMatchesOperation("POST", "/v1/projects/{ref}/functions/deploy", 201, fn);
    expect(fn).toMatchObject({
      slug: "hello",
      version: 2,
      verify_jwt: false,
      entrypoint_path: "supabase/functions/hello/index.ts",
      import_map: false,
    });
    expect(rpcs[1]?.body).toMatchObject({
      entrypoint: "supabase/functions/hello/index.ts",
      verifyJwt: false,
      files: files.map((f) => ({ path: f.name, content: Buffer.from(f.content).toString("base64") })),
    });

    // Several functions: the CLI then activates them with a bulk update.
    const bulk = await t.request(`/v1/projects/${ref}/functions`, {
      method: "PUT",
      token: developer.token,
      json: [{ id: fn.id, slug: "hello", name: "hello", status: "ACTIVE", version: 2, verify_jwt: false }],
    });
    expect(bulk.status, await bulk.clone().text()).toBe(200);
    const out = await json<unknown>(bulk);
    expectMatchesOperation("PUT", "/v1/projects/{ref}/functions", 200, out);
    expect(rpcs).toHaveLength(2); // verify_jwt unchanged: nothing to deliver
  });

  it("update verify_jwt re-delivers the files with the new setting; delete removes it from the runtime, then the record", async () => {
    await deployStudio("fn", [{ name: "index.ts", content: HELLO }], { entrypoint_path: "index.ts" });
    const upd = await t.request(`/v1/projects/${ref}/functions/fn`, {
      method: "PATCH",
      token: owner.token,
      json: { verify_jwt: false },
    });
    expect(upd.status, await upd.clone().text()).toBe(200);
    expectMatchesOperation("PATCH", "/v1/projects/{ref}/functions/{function_slug}", 200, await upd.clone().json());
    expect(rpcs[1]).toMatchObject({ method: "PUT", path: "/functions/fn", body: { verifyJwt: false } });

    const del = await t.request(`/v1/projects/${ref}/functions/fn`, { method: "DELETE", token: owner.token });
    expect(del.status).toBe(200);
    expect(rpcs[2]).toMatchObject({ method: "DELETE", path: "/functions/fn", body: { service: "functions" } });
    expect((await t.request(`/v1/projects/${ref}/functions/fn`, { token: owner.token })).status).toBe(404);
    expect(await json(await t.request(`/v1/projects/${ref}/functions`, { token: owner.token }))).toEqual([]);
  });

  it("a delivery that fails changes nothing and says why", async () => {
    answer = () => ({ status: 409, body: { message: 'service "functions" of project x has no running container' } });
    const res = await deployStudio("fn", [{ name: "index.ts", content: HELLO }], { entrypoint_path: "index.ts" });
    expect(res.status).toBe(409);
    expect((await json<{ message: string }>(res)).message).toMatch(/edge runtime is not running/);
    expect(await json(await t.request(`/v1/projects/${ref}/functions`, { token: owner.token }))).toEqual([]);
  });

  it.each([
    [
      "a path leaving the function",
      [{ name: "../../etc/passwd", content: "x" }],
      { entrypoint_path: "../../etc/passwd" },
      /not a relative file path/,
    ],
    [
      "an entrypoint not uploaded",
      [{ name: "index.ts", content: "x" }],
      { entrypoint_path: "main.ts" },
      /not among the uploaded files/,
    ],
    ["no entrypoint", [{ name: "index.ts", content: "x" }], {}, /metadata\.entrypoint_path/],
    [
      "the same file twice",
      [
        { name: "a.ts", content: "x" },
        { name: "./a.ts", content: "y" },
      ],
      { entrypoint_path: "a.ts" },
      /sent twice/,
    ],
    [
      "too many bytes",
      [{ name: "index.ts", content: "x".repeat(2 * 1024 * 1024 + 1) }],
      { entrypoint_path: "index.ts" },
      /exceeds|at most/,
    ],
  ])("refuses %s with a 4xx before anything reaches the agent", async (_n, files, meta, message) => {
    const res = await deployStudio("fn", files, meta);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await json<{ message: string }>(res)).message).toMatch(message);
    expect(rpcs).toHaveLength(0);
  });

  it("refuses bad slugs, non-multipart deploys and eszip/JSON creates with a message saying what works", async () => {
    const bad = await deployStudio("1abc", [{ name: "index.ts", content: "x" }], { entrypoint_path: "index.ts" });
    expect(bad.status).toBe(400);
    const plain = await t.request(`/v1/projects/${ref}/functions/deploy?slug=a`, {
      method: "POST",
      token: owner.token,
      json: {},
    });
    expect(plain.status).toBe(415);
    expect((await json<{ message: string }>(plain)).message).toMatch(/--use-api/);
    const legacy = await t.request(`/v1/projects/${ref}/functions?slug=a`, {
      method: "POST",
      token: owner.token,
      json: { slug: "a", body: "x" },
    });
    expect(legacy.status).toBe(415);
    expect(rpcs).toHaveLength(0);
  });

  it("roles and tenancy: read_only may read but not deploy or delete; outsiders 404", async () => {
    expect(
      (await deployStudio("fn", [{ name: "index.ts", content: HELLO }], { entrypoint_path: "index.ts" }, readOnly))
        .status,
    ).toBe(403);
    expect((await t.request(`/v1/projects/${ref}/functions`, { token: stranger.token })).status).toBe(404);
    expect(
      (await deployStudio("fn", [{ name: "index.ts", content: HELLO }], { entrypoint_path: "index.ts" }, stranger))
        .status,
    ).toBe(404);
    await deployStudio("fn", [{ name: "index.ts", content: HELLO }], { entrypoint_path: "index.ts" });
    expect(
      (await t.request(`/v1/projects/${ref}/functions/fn`, { method: "DELETE", token: readOnly.token })).status,
    ).toBe(403);
    expect((await t.request(`/v1/projects/${ref}/functions/fn/body`, { token: stranger.token })).status).toBe(404);
    expect(rpcs).toHaveLength(1);
  });
});

describe("function secrets", () => {
  it("bulk set → encrypted at rest, listed as name + SHA-256, the whole set delivered; bulk delete delivers the rest", async () => {
    const set = await t.request(`/v1/projects/${ref}/secrets`, {
      method: "POST",
      token: developer.token,
      json: [
        { name: "STRIPE_KEY", value: "sk_test_123" },
        { name: "PEM", value: "-----BEGIN-----\nabc\n-----END-----" },
      ],
    });
    expect(set.status, await set.clone().text()).toBe(201);
    expect(rpcs[0]).toMatchObject({
      service: "edge-functions",
      method: "PUT",
      path: "/secrets",
      body: {
        service: "functions",
        secrets: { STRIPE_KEY: "sk_test_123", PEM: "-----BEGIN-----\nabc\n-----END-----" },
      },
    });
    const rows = await t.deps.database.db.select().from(edgeFunctionSecrets);
    expect(rows.map((r) => r.valueEncrypted).join()).not.toContain("sk_test_123");

    const list = await t.request(`/v1/projects/${ref}/secrets`, { token: developer.token });
    const items = await json<{ name: string; value: string }[]>(list);
    expectMatchesOperation("GET", "/v1/projects/{ref}/secrets", 200, items);
    const digest = Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("sk_test_123"))).toString(
      "hex",
    );
    expect(items.map((i) => [i.name, i.value])).toEqual([
      ["PEM", expect.stringMatching(/^[0-9a-f]{64}$/)],
      ["STRIPE_KEY", digest],
    ]);
    expect(JSON.stringify(items)).not.toContain("sk_test_123");

    const del = await t.request(`/v1/projects/${ref}/secrets`, {
      method: "DELETE",
      token: developer.token,
      json: ["PEM"],
    });
    expect(del.status).toBe(200);
    expect(rpcs[1]?.body).toEqual({ service: "functions", secrets: { STRIPE_KEY: "sk_test_123" } });
    const audit = await t.deps.database.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.action, "project.function_secrets.set"));
    expect(JSON.stringify(audit)).not.toContain("sk_test_123");
  });

  it("refuses SUPABASE_ names, bad names and oversized values; read_only may not list; a failed delivery says the secrets are saved", async () => {
    for (const body of [
      [{ name: "SUPABASE_URL", value: "x" }],
      [{ name: "1BAD", value: "x" }],
      [{ name: "A", value: "x".repeat(24577) }],
      [],
    ]) {
      const res = await t.request(`/v1/projects/${ref}/secrets`, { method: "POST", token: owner.token, json: body });
      expect(res.status, JSON.stringify(body).slice(0, 50)).toBe(400);
    }
    expect((await t.request(`/v1/projects/${ref}/secrets`, { token: readOnly.token })).status).toBe(403);
    expect((await t.request(`/v1/projects/${ref}/secrets`, { token: stranger.token })).status).toBe(404);
    expect(rpcs).toHaveLength(0);
    answer = () => ({ error: "no answer", code: "timeout" });
    const res = await t.request(`/v1/projects/${ref}/secrets`, {
      method: "POST",
      token: owner.token,
      json: [{ name: "A", value: "1" }],
    });
    expect(res.status).toBe(504);
    expect((await json<{ message: string }>(res)).message).toMatch(
      /saved but not yet handed to the project's edge runtime/,
    );
    expect((await json<unknown[]>(await t.request(`/v1/projects/${ref}/secrets`, { token: owner.token }))).length).toBe(
      1,
    );
    // The whole set must fit one agent frame: about 1 MiB of values together, over all requests.
    const batch = (from: number) =>
      Array.from({ length: 30 }, (_, i) => ({ name: `BIG_${from + i}`, value: "x".repeat(24000) }));
    const first = await t.request(`/v1/projects/${ref}/secrets`, {
      method: "POST",
      token: owner.token,
      json: batch(0),
    });
    expect(first.status).toBe(504); // saved; the fake agent still times out
    const tooMuch = await t.request(`/v1/projects/${ref}/secrets`, {
      method: "POST",
      token: owner.token,
      json: batch(30),
    });
    expect(tooMuch.status).toBe(400);
    expect(((await tooMuch.json()) as { message: string }).message).toMatch(/about 1 MiB together/);
    expect((await json<unknown[]>(await t.request(`/v1/projects/${ref}/secrets`, { token: owner.token }))).length).toBe(
      31,
    );
  });
});

describe("a release without Edge Functions (local)", () => {
  it("answers 409 naming the release and the missing service, for functions and secrets alike", async () => {
    const local = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: "local" });
    try {
      const u = await signUpAndLogin(local);
      const o = await createOrg(local, u);
      const c = (await enrollHost(local, u)).conn;
      const seen: Rpc[] = [];
      c.answerRpc = (rpc) => {
        seen.push(rpc);
        return { status: 200, body: {} };
      };
      const r = (await createProjectViaApi(local, u, o, { desired_instance_size: "small" })).ref;
      for (const [method, path] of [
        ["GET", "/functions"],
        ["GET", "/functions/hello"],
        ["GET", "/secrets"],
      ] as const) {
        const res = await local.request(`/v1/projects/${r}${path}`, { method, token: u.token });
        expect(res.status, path).toBe(409);
        expect((await json<{ message: string }>(res)).message).toMatch(
          /release \(local\) does not run the Edge Functions \(edge-runtime\) service, so Edge Functions is not available/,
        );
      }
      const form = studioForm([{ name: "index.ts", content: HELLO }], { entrypoint_path: "index.ts" });
      const res = await local.request(`/v1/projects/${r}/functions/deploy?slug=hello`, {
        method: "POST",
        token: u.token,
        body: form,
      });
      expect(res.status).toBe(409);
      expect(seen).toHaveLength(0);
    } finally {
      await local.close();
    }
  });
});
