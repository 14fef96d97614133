import { decodeJwt, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMPUTE_SIZES } from "../../services/projects/model.js";
import { expectMatchesSchema } from "../../test-support/contracts.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { expectMatchesOperation } from "../../test-support/openapi.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../test-support/projects-factory.js";

/**
 * The calls Studio (February 2026) makes on every project page, which failed and were retried:
 * each one as Studio sends it, against the real control plane, with the answer checked against
 * the Management API document where it describes the call.
 */
let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let developer: TestUser;
let stranger: TestUser;
let org: TestOrg;
let ref: string;

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  developer = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  await addMember(t, org, developer, "developer");
  ref = (await createProjectViaApi(t, owner, org, { desired_instance_size: "small" })).ref;
});
afterAll(async () => {
  await t.close();
});

const call = async (method: string, path: string, token: string | undefined, json?: unknown) => {
  const res = await t.request(path, { method, ...(token ? { token } : {}), ...(json !== undefined ? { json } : {}) });
  return { status: res.status, body: (await res.json()) as unknown };
};

describe("GET /platform/projects/{ref}/billing/addons", () => {
  it("answers the project's compute size as the selected compute add-on, every size as available", async () => {
    const { status, body } = await call("GET", `/platform/projects/${ref}/billing/addons`, readOnly.token);
    expect(status).toBe(200);
    const addons = body as {
      ref: string;
      selected_addons: { type: string; variant: { identifier: string; meta: Record<string, unknown> } }[];
      available_addons: { type: string; variants: { identifier: string }[] }[];
    };
    expect(addons.ref).toBe(ref);
    expect(addons.selected_addons).toHaveLength(1);
    expect(addons.selected_addons[0]).toMatchObject({
      type: "compute_instance",
      variant: { identifier: "ci_small", meta: { memory_gb: 2, cpu_cores: 1.5, cpu_dedicated: false } },
    });
    expect(addons.available_addons[0]?.variants.map((v) => v.identifier)).toEqual(COMPUTE_SIZES.map((s) => `ci_${s}`));
  });
});

describe("every-page calls with the empty or real answer Studio renders", () => {
  const cases: [string, string, unknown, number, unknown, string | null][] = [
    ["GET", "/platform/projects/{ref}/load-balancers", undefined, 200, [], null],
    ["GET", "/platform/projects/{ref}/config/secrets/update-status", undefined, 200, { update_status: null }, null],
    ["GET", "/v1/projects/{ref}/branches", undefined, 200, [], "/v1/projects/{ref}/branches"],
    [
      "GET",
      "/v1/projects/{ref}/upgrade/status",
      undefined,
      200,
      { databaseUpgradeStatus: null },
      "/v1/projects/{ref}/upgrade/status",
    ],
    [
      "GET",
      "/v1/projects/{ref}/ssl-enforcement",
      undefined,
      200,
      { currentConfig: { database: false }, appliedSuccessfully: true },
      "/v1/projects/{ref}/ssl-enforcement",
    ],
    [
      "GET",
      "/v1/projects/{ref}/network-restrictions",
      undefined,
      200,
      {
        entitlement: "disallowed",
        config: { dbAllowedCidrs: ["0.0.0.0/0"], dbAllowedCidrsV6: ["::/0"] },
        status: "applied",
      },
      "/v1/projects/{ref}/network-restrictions",
    ],
    [
      "POST",
      "/v1/projects/{ref}/network-bans/retrieve",
      {},
      201,
      { banned_ipv4_addresses: [] },
      "/v1/projects/{ref}/network-bans/retrieve",
    ],
  ];

  it.each(cases)("%s %s", async (method, template, json, status, expected, operation) => {
    const path = template.replace("{ref}", ref);
    const res = await call(method, path, readOnly.token, json);
    expect(res.status).toBe(status);
    expect(res.body).toEqual(expected);
    if (operation) expectMatchesOperation(method, operation, status, res.body);
  });

  it.each(cases)("%s %s is 404 for a non-member and 401 without a session", async (method, template, json) => {
    const path = template.replace("{ref}", ref);
    expect((await call(method, path, stranger.token, json)).status).toBe(404);
    expect((await call(method, path, undefined, json)).status).toBe(401);
  });
});

describe("GET /v1/projects/{ref}/config/auth/signing-keys (+/legacy)", () => {
  it("lists the project's ES256 signing key with its public JWK and the legacy HS256 secret without it", async () => {
    const { status, body } = await call("GET", `/v1/projects/${ref}/config/auth/signing-keys`, readOnly.token);
    expect(status).toBe(200);
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/auth/signing-keys", 200, body);
    const { keys } = body as {
      keys: { id: string; algorithm: string; status: string; public_jwk: Record<string, unknown> | null }[];
    };
    expect(keys.map((k) => [k.algorithm, k.status])).toEqual([
      ["ES256", "in_use"],
      ["HS256", "previously_used"],
    ]);
    const es = keys[0]?.public_jwk;
    expect(es).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", key_ops: ["verify"] });
    expect(es).not.toHaveProperty("d");
    expect(keys[1]?.public_jwk).toBeNull();

    const legacy = await call("GET", `/v1/projects/${ref}/config/auth/signing-keys/legacy`, readOnly.token);
    expect(legacy.status).toBe(200);
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/auth/signing-keys/legacy", 200, legacy.body);
    expect(legacy.body).toEqual(keys[1]);
    // Stable ids across reads.
    const again = await call("GET", `/v1/projects/${ref}/config/auth/signing-keys`, owner.token);
    expect(again.body).toEqual(body);
  });

  it("never reveals the JWT secret, and is 404 for a non-member", async () => {
    const settings = await call("GET", `/platform/projects/${ref}/config/postgrest`, owner.token);
    const secret = (settings.body as { jwt_secret: string }).jwt_secret;
    expect(secret.length).toBeGreaterThan(20);
    const keys = await t.request(`/v1/projects/${ref}/config/auth/signing-keys`, { token: owner.token });
    expect(await keys.text()).not.toContain(secret);
    expect((await call("GET", `/v1/projects/${ref}/config/auth/signing-keys`, stranger.token)).status).toBe(404);
    expect((await call("GET", `/v1/projects/${ref}/config/auth/signing-keys/legacy`, stranger.token)).status).toBe(404);
  });
});

describe("the legacy API keys page", () => {
  it("gets the anon and service_role keys from settings while no JWT secret update is pending", async () => {
    // Studio's DisplayApiSettings: no keys while update-status fails or reports an update.
    expect((await call("GET", `/platform/projects/${ref}/config/secrets/update-status`, owner.token)).body).toEqual({
      update_status: null,
    });
    const { body } = await call("GET", `/platform/projects/${ref}/settings`, owner.token);
    const keys = (body as { service_api_keys: { tags: string; api_key: string }[] }).service_api_keys;
    expect(keys.map((k) => k.tags)).toEqual(["anon", "service_role"]);
    for (const k of keys) expect(decodeJwt(k.api_key)).toMatchObject({ role: k.tags, ref });
    const legacy = await call("GET", `/v1/projects/${ref}/api-keys/legacy`, owner.token);
    expect(legacy.body).toEqual({ enabled: true });
  });

  it("are the project's real keys, the same in settings and in the API-keys list, for roles that may read them", async () => {
    // The project's JWT secret (owner only): every legacy key must verify with it.
    const postgrest = await call("GET", `/platform/projects/${ref}/config/postgrest`, owner.token);
    const secret = new TextEncoder().encode((postgrest.body as { jwt_secret: string }).jwt_secret);
    for (const user of [owner, developer]) {
      // Studio's exact calls: GET …/settings (DisplayApiSettings) and GET /v1/…/api-keys?reveal=false
      // (getKeys finds the legacy keys by name).
      const settings = await call("GET", `/platform/projects/${ref}/settings`, user.token);
      expect(settings.status).toBe(200);
      expectMatchesSchema("ProjectSettingsResponse", settings.body);
      const fromSettings = (settings.body as { service_api_keys: { tags: string; api_key: string }[] })
        .service_api_keys;
      const list = await call("GET", `/v1/projects/${ref}/api-keys?reveal=false`, user.token);
      expect(list.status).toBe(200);
      expectMatchesOperation("GET", "/v1/projects/{ref}/api-keys", 200, list.body);
      const byName = new Map((list.body as { name: string; api_key: string }[]).map((k) => [k.name, k.api_key]));
      for (const { tags, api_key } of fromSettings) {
        expect(byName.get(tags)).toBe(api_key);
        const { payload } = await jwtVerify(api_key, secret);
        expect(payload).toMatchObject({ role: tags, ref, iss: "supabase" });
      }
    }
  });

  it("a read-only member gets no keys from settings and only the anon key from the list; a stranger gets 404", async () => {
    const settings = await call("GET", `/platform/projects/${ref}/settings`, readOnly.token);
    expect((settings.body as { service_api_keys: unknown[] }).service_api_keys).toEqual([]);
    const list = (await call("GET", `/v1/projects/${ref}/api-keys?reveal=true`, readOnly.token)).body as {
      name: string;
      api_key: string;
    }[];
    const anon = list.find((k) => k.name === "anon")?.api_key as string;
    expect(decodeJwt(anon)).toMatchObject({ role: "anon" });
    const service = list.find((k) => k.name === "service_role")?.api_key as string;
    expect(service).not.toMatch(/^eyJ[\w-]+\.eyJ/);
    expect(service).toContain("•");
    // Studio's own check for the page (read:Read on service_api_keys) is denied by the role's rows.
    const rows = (await call("GET", "/platform/profile/permissions", readOnly.token)).body as {
      organization_slug: string;
      actions: string[];
      resources: string[];
      restrictive: boolean;
    }[];
    expect(
      rows.some(
        (r) =>
          r.organization_slug === org.slug &&
          r.restrictive &&
          r.actions.includes("read:Read") &&
          r.resources.includes("service_api_keys"),
      ),
    ).toBe(true);
    for (const path of [`/platform/projects/${ref}/settings`, `/v1/projects/${ref}/api-keys?reveal=false`]) {
      expect((await call("GET", path, stranger.token)).status).toBe(404);
    }
  });
});

describe("organization and account calls", () => {
  it("GET /platform/organizations/{slug}/oauth/apps answers an empty list for members only", async () => {
    for (const type of ["published", "authorized"]) {
      const res = await call("GET", `/platform/organizations/${org.slug}/oauth/apps?type=${type}`, readOnly.token);
      expect(res).toEqual({ status: 200, body: [] });
    }
    expect((await call("GET", `/platform/organizations/${org.slug}/oauth/apps`, stranger.token)).status).toBe(404);
    expect((await call("GET", `/platform/organizations/${org.slug}/oauth/apps?type=x`, owner.token)).status).toBe(400);
  });

  it("POST /platform/profile/audit-login answers 201 with a session and 401 without", async () => {
    expect(await call("POST", "/platform/profile/audit-login", owner.token, {})).toEqual({ status: 201, body: {} });
    expect((await call("POST", "/platform/profile/audit-login", undefined, {})).status).toBe(401);
  });

  it("GET /platform/telemetry/feature-flags answers {} before sign-in", async () => {
    expect(await call("GET", "/platform/telemetry/feature-flags", undefined)).toEqual({ status: 200, body: {} });
  });
});
