import type { Rpc } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog } from "../../../db/schema.js";
import { PRODUCTION_RELEASE_NAME } from "../../../releases/production/index.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { expectMatchesOperation } from "../../../test-support/openapi.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * Studio's Storage pages against the real control plane, with a fake agent standing in for the
 * project's gateway and storage-api. No Storage image runs here, so the translation is held to
 * Storage's published API:
 *
 * Source: supabase/supabase apps/docs/spec/storage_v0_openapi.json (OpenAPI 3.0.3): `GET /bucket/`
 * → bucketSchema[] ({id, name, owner, public, type, file_size_limit, allowed_mime_types,
 * created_at, updated_at}); `POST /bucket/` {name (required), id, public, file_size_limit,
 * allowed_mime_types} → {name}; `GET|PUT|DELETE /bucket/{bucketId}`; `POST /bucket/{bucketId}/empty`;
 * `POST /object/list/{bucketName}` {prefix, limit, offset, sortBy, search};
 * `DELETE /object/{bucketName}` {prefixes}; `GET /object/authenticated/{bucketName}/{wildcard}` (the
 * object's bytes); `POST /object/sign/{bucketName}/{wildcard}` {expiresIn} → {signedURL} (a path
 * under /storage/v1); `POST /object/move` and `POST /object/copy` {bucketId, sourceKey,
 * destinationKey}; public objects at `/object/public/{bucketName}/{wildcard}`; errors
 * {statusCode, error, message}. Studio's download, sign, public-url and move calls:
 * apps/studio/data/storage/bucket-object-*-mutation.ts, object-move-mutation.ts.
 * Studio's side: platform.d.ts /platform/storage/{ref}/buckets…; create sends {id, public,
 * file_size_limit, allowed_mime_types} (apps/studio/data/storage/bucket-create-mutation.ts);
 * objects/list sends {path, options} (bucket-objects-list-mutation.ts).
 */

const BUCKET = {
  id: "avatars",
  name: "avatars",
  owner: "",
  public: false,
  type: "STANDARD",
  file_size_limit: 1000000,
  allowed_mime_types: ["image/png"],
  created_at: "2026-11-25T12:00:00.000Z",
  updated_at: "2026-11-25T12:00:00.000Z",
};

let t: TestApp;
let owner: TestUser;
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
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  answer = () => ({ status: 200, body: [BUCKET], contentType: "application/json" });
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

const call = (method: string, path: string, json?: unknown, user = owner) =>
  t.request(`/platform/storage/${ref}${path}`, { method, token: user.token, ...(json !== undefined ? { json } : {}) });

describe("Storage pages through the project's Storage API", () => {
  it("list: GET /bucket through the gateway with the service-role key; buckets as Storage describes them", async () => {
    const res = await call("GET", "/buckets", undefined, readOnly);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual([BUCKET]);
    expect(rpcs[0]).toMatchObject({ ref, service: "gateway", method: "GET", path: "/storage/v1/bucket" });
    expect(rpcs[0]?.headers.authorization).toBe(`Bearer ${rpcs[0]?.headers.apikey}`);
  });

  it("create: Studio's {id, public, limits} → POST /bucket {name, id, …}; audited", async () => {
    answer = () => ({ status: 200, body: { name: "avatars" } });
    const res = await call("POST", "/buckets", {
      id: "avatars",
      public: true,
      file_size_limit: null,
      allowed_mime_types: null,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ name: "avatars" });
    expect(rpcs[0]).toMatchObject({
      method: "POST",
      path: "/storage/v1/bucket",
      body: { name: "avatars", id: "avatars", public: true, file_size_limit: null, allowed_mime_types: null },
    });
    const rows = await t.deps.database.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.action, "project.storage_bucket.create"));
    expect(rows.map((r) => r.target)).toEqual(["avatars"]);
  });

  it.each([
    ["get", "GET", "/buckets/my%20files", undefined, { method: "GET", path: "/storage/v1/bucket/my%20files" }],
    [
      "update",
      "PATCH",
      "/buckets/avatars",
      { public: false },
      { method: "PUT", path: "/storage/v1/bucket/avatars", body: { public: false } },
    ],
    ["delete", "DELETE", "/buckets/avatars", undefined, { method: "DELETE", path: "/storage/v1/bucket/avatars" }],
    [
      "empty",
      "POST",
      "/buckets/avatars/empty",
      undefined,
      { method: "POST", path: "/storage/v1/bucket/avatars/empty" },
    ],
    [
      "list objects",
      "POST",
      "/buckets/avatars/objects/list",
      { path: "2026/", options: { limit: 200, offset: 0, search: "", sortBy: { column: "name", order: "asc" } } },
      {
        method: "POST",
        path: "/storage/v1/object/list/avatars",
        body: { prefix: "2026/", limit: 200, offset: 0, search: "", sortBy: { column: "name", order: "asc" } },
      },
    ],
    [
      "delete objects",
      "DELETE",
      "/buckets/avatars/objects",
      { paths: ["a.png", "b/c.png"] },
      { method: "DELETE", path: "/storage/v1/object/avatars", body: { prefixes: ["a.png", "b/c.png"] } },
    ],
  ])("%s → Storage's own call", async (_n, method, path, body, sent) => {
    answer = (rpc) => ({
      status: 200,
      body: rpc.method === "GET" ? BUCKET : path.endsWith("/list") ? [{ name: "a.png" }] : { message: "Successfully" },
    });
    const res = await call(method, path, body);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(rpcs[0]).toMatchObject(sent);
  });

  it.each([
    [
      "an existing bucket",
      { status: 400, body: { statusCode: "409", error: "Duplicate", message: "The resource already exists" } },
      400,
      /^Storage: The resource already exists$/,
    ],
    [
      "a missing bucket",
      { status: 404, body: { statusCode: "404", error: "Bucket not found", message: "Bucket not found" } },
      404,
      /Bucket not found/,
    ],
    [
      "Storage refusing our key",
      { status: 403, body: { message: "invalid signature" } },
      502,
      /refused the project's service-role key/,
    ],
    ["an unexpected answer", { status: 200, body: "not json" }, 502, /unexpected shape/],
  ])("%s → a clear error", async (_n, result, status, message) => {
    answer = () => result;
    const res = await call("GET", "/buckets");
    expect(res.status).toBe(status);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
  });

  it("security: read_only may list but not change; outsiders 404; bad names 404 or 400; nothing reaches Storage", async () => {
    expect((await call("POST", "/buckets", { id: "x" }, readOnly)).status).toBe(403);
    expect((await call("DELETE", "/buckets/avatars", undefined, readOnly)).status).toBe(403);
    expect((await call("GET", "/buckets", undefined, stranger)).status).toBe(404);
    expect((await call("GET", "/buckets/..%2F..%2Fadmin")).status).toBe(404);
    expect((await call("POST", "/buckets", { id: "../etc" })).status).toBe(400);
    expect(rpcs).toHaveLength(0);
  });
});

describe("objects: download, signed and public URLs, move, copy; settings and S3 keys", () => {
  it("download: Storage `GET /object/authenticated/{id}/{path}` asked as raw bytes; the bytes come back as they were", async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0x89, 0x50, 0x4e, 0x47]);
    answer = () => ({ status: 200, body: bytes.toString("base64"), bodyEncoding: "base64", contentType: "image/png" });
    const res = await call("POST", "/buckets/avatars/objects/download", { path: "2026/me & you.png" }, readOnly);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    expect(rpcs[0]).toMatchObject({
      service: "gateway",
      method: "GET",
      path: "/storage/v1/object/authenticated/avatars/2026/me%20%26%20you.png",
      resultEncoding: "base64",
    });
  });

  it("download: Storage's error comes back as its message; an agent that cannot send bytes says to upgrade", async () => {
    const err = Buffer.from(JSON.stringify({ statusCode: "404", error: "not_found", message: "Object not found" }));
    answer = () => ({ status: 400, body: err.toString("base64"), bodyEncoding: "base64" });
    const res = await call("POST", "/buckets/avatars/objects/download", { path: "missing.png" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe("Storage: Object not found");
    answer = () => ({ status: 200, body: "text the old agent decoded" });
    const old = await call("POST", "/buckets/avatars/objects/download", { path: "a.png" });
    expect(old.status).toBe(503);
    expect(((await old.json()) as { message: string }).message).toMatch(/agent is too old/);
  });

  it("sign: Storage `POST /object/sign/{id}/{path}` {expiresIn}; {signedUrl} on the project's public URL", async () => {
    answer = () => ({ status: 200, body: { signedURL: "/object/sign/avatars/a.png?token=abc" } });
    const res = await call("POST", "/buckets/avatars/objects/sign", { path: "a.png", expiresIn: 3600 }, readOnly);
    expect(res.status, await res.clone().text()).toBe(200);
    const { signedUrl } = (await res.json()) as { signedUrl: string };
    expect(signedUrl).toMatch(/^https?:\/\/[^/]+\/storage\/v1\/object\/sign\/avatars\/a\.png\?token=abc$/);
    expect(rpcs[0]).toMatchObject({
      method: "POST",
      path: "/storage/v1/object/sign/avatars/a.png",
      body: { expiresIn: 3600 },
    });
  });

  it("public-url: built from the project's public URL, no call to Storage", async () => {
    const res = await call("POST", "/buckets/avatars/objects/public-url", { path: "dir/a b.png" }, readOnly);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { publicUrl: string }).publicUrl).toMatch(
      /\/storage\/v1\/object\/public\/avatars\/dir\/a%20b\.png$/,
    );
    expect(rpcs).toHaveLength(0);
  });

  it.each([
    ["move", "/object/move"],
    ["copy", "/object/copy"],
  ])("%s {from, to} → Storage `POST %s` {bucketId, sourceKey, destinationKey}; read_only 403", async (op, path) => {
    answer = () => ({ status: 200, body: { message: "Successfully moved" } });
    expect(
      (await call("POST", `/buckets/avatars/objects/${op}`, { from: "a.png", to: "b/a.png" }, readOnly)).status,
    ).toBe(403);
    const res = await call("POST", `/buckets/avatars/objects/${op}`, { from: "a.png", to: "b/a.png" });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(rpcs[0]).toMatchObject({
      method: "POST",
      path: `/storage/v1${path}`,
      body: { bucketId: "avatars", sourceKey: "a.png", destinationKey: "b/a.png" },
    });
  });

  it("refuses object paths that leave the bucket before anything reaches Storage", async () => {
    for (const path of ["../x", "a/../../b", "/etc/passwd", "a/./b"]) {
      expect((await call("POST", "/buckets/avatars/objects/sign", { path })).status, path).toBe(400);
    }
    expect((await call("POST", "/buckets/avatars/objects/move", { from: "a", to: "../b" })).status).toBe(400);
    expect(rpcs).toHaveLength(0);
  });

  it("settings: config/storage from the release (StorageConfigResponse); a change is refused saying why", async () => {
    const res = await t.request(`/platform/projects/${ref}/config/storage`, { token: readOnly.token });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json();
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/storage", 200, body);
    expect(body).toMatchObject({
      fileSizeLimit: 52428800,
      features: { imageTransformation: { enabled: true }, s3Protocol: { enabled: true } },
      capabilities: { list_v2: false },
    });
    const patch = await t.request(`/platform/projects/${ref}/config/storage`, {
      method: "PATCH",
      token: owner.token,
      json: { fileSizeLimit: 10 },
    });
    expect(patch.status).toBe(400);
    expect(((await patch.json()) as { message: string }).message).toMatch(/come from the project's release/);
    expect((await t.request(`/platform/projects/${ref}/config/storage`, { token: stranger.token })).status).toBe(404);
  });

  it("S3 access keys: the project's key id for those who may read secrets, never the secret; creating one is refused", async () => {
    const res = await t.request(`/platform/storage/${ref}/credentials`, { token: owner.token });
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: { access_key: string }[] };
    expect(data).toHaveLength(1);
    expect(data[0]?.access_key).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(data)).not.toMatch(/[0-9a-f]{64}/);
    expect((await t.request(`/platform/storage/${ref}/credentials`, { token: readOnly.token })).status).toBe(403);
    const create = await t.request(`/platform/storage/${ref}/credentials`, {
      method: "POST",
      token: owner.token,
      json: { description: "x" },
    });
    expect(create.status).toBe(400);
    expect(((await create.json()) as { message: string }).message).toMatch(/one S3 access key pair/);
  });
});

describe("analytics and vector buckets (analytics-buckets-query.ts, vector-buckets-query.ts)", () => {
  it("STUB: empty lists in Studio's shapes for members, without asking the project; outsiders 404", async () => {
    const analytics = await t.request(`/platform/storage/${ref}/analytics-buckets`, { token: readOnly.token });
    expect(analytics.status).toBe(200);
    expect(await analytics.json()).toEqual({ data: [] });
    const vector = await t.request(`/platform/storage/${ref}/vector-buckets`, { token: readOnly.token });
    expect(vector.status).toBe(200);
    expect(await vector.json()).toEqual({ vectorBuckets: [] });
    expect(rpcs).toHaveLength(0);
    for (const p of ["analytics-buckets", "vector-buckets"]) {
      expect((await t.request(`/platform/storage/${ref}/${p}`, { token: stranger.token })).status).toBe(404);
      const create = await t.request(`/platform/storage/${ref}/${p}`, { method: "POST", token: owner.token, json: {} });
      expect(create.status).toBe(404);
      expect(((await create.json()) as { message: string }).message).toMatch(/not supported by SupaManager/);
    }
  });
});

describe("a release without Storage (local)", () => {
  it("answers 409 naming the release and the missing service", async () => {
    const local = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: "local" });
    try {
      const u = await signUpAndLogin(local);
      const o = await createOrg(local, u);
      const c = (await enrollHost(local, u)).conn;
      c.answerRpc = () => ({ status: 200, body: [] });
      const r = (await createProjectViaApi(local, u, o, { desired_instance_size: "small" })).ref;
      await c.settle();
      await c.send({ type: "applied", ref: r, version: 1, desiredState: "running", ok: true });
      await c.send({
        type: "health",
        ref: r,
        services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
      });
      const res = await local.request(`/platform/storage/${r}/buckets`, { token: u.token });
      expect(res.status).toBe(409);
      const cfg = await local.request(`/platform/projects/${r}/config/storage`, { token: u.token });
      expect(cfg.status).toBe(409);
      expect(((await res.json()) as { message: string }).message).toMatch(
        /release \(local\) does not run the Storage service, so Storage is not available/,
      );
    } finally {
      await local.close();
    }
  });
});
