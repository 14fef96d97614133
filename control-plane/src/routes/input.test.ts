import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loggableError } from "../errors.js";
import { signUpAndLogin, type TestUser } from "../test-support/factories.js";
import { createTestApp, type TestApp } from "../test-support/harness.js";
import { createOrg, createProjectViaApi, type TestOrg } from "../test-support/projects-factory.js";

/**
 * Client mistakes the adversarial review found answering 500 (issue 14, item 6): a NUL character
 * in any string (body, query, path) and a malformed backup-target endpoint are refused at the
 * edge with 400, and no log line carries a query's parameters.
 */

let t: TestApp;
let owner: TestUser;
let org: TestOrg;
let ref: string;

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  ref = (await createProjectViaApi(t, owner, org)).ref;
}, 60_000);
afterAll(async () => {
  await t.close();
});

const NUL = "\u0000";

describe("NUL characters", () => {
  const bodies: [string, string, string, unknown][] = [
    ["an organization name", "POST", "/platform/organizations", { name: `acme${NUL}` }],
    ["a project name", "PATCH", "/platform/projects/:ref", { name: `p${NUL}x` }],
    ["a folder name", "POST", "/platform/projects/:ref/content/folders", { name: `f${NUL}` }],
    ["a profile field", "PATCH", "/platform/profile", { first_name: `a${NUL}b` }],
    ["an object key", "POST", "/platform/organizations", { name: "ok", [`k${NUL}`]: 1 }],
  ];
  it.each(bodies)("in %s (JSON body) → 400 naming the field", async (_what, method, path, json) => {
    const res = await t.request(path.replace(":ref", ref), { method, token: owner.token, json });
    expect(res.status, await res.clone().text()).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/body.*NUL/);
  });

  const urls = [
    "/platform/projects?search=a%00b",
    `/platform/organizations/${"x"}%00/projects`,
    "/platform/projects/abc%00def",
    `/v1/projects?search=%00`,
  ];
  it.each(urls)("in the URL %s → 400", async (path) => {
    const res = await t.request(path, { token: owner.token });
    expect(res.status, await res.clone().text()).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/NUL/);
  });
});

describe("backup target endpoints", () => {
  const target = { bucket: "backups", access_key_id: "AKIAEXAMPLE", secret_access_key: "secret" };
  it.each(["not a url", "", "http://", "http://[::1", "ftp://example.com", "https://u:p@s3.example.com"])(
    "%j → 400",
    async (endpoint) => {
      const res = await t.request(`/platform/organizations/${org.slug}/backup-targets`, {
        method: "POST",
        token: owner.token,
        json: { ...target, endpoint },
      });
      expect(res.status, await res.clone().text()).toBe(400);
      expect(((await res.json()) as { message: string }).message).toMatch(/endpoint/);
    },
  );
});

describe("log lines", () => {
  it("never carry a failed query's parameters or the values PostgreSQL quotes", () => {
    const cause = Object.assign(new Error('invalid input syntax for type uuid: "sbp_secret_hash"'), { code: "22P02" });
    const err = new Error('Failed query: select 1 where x = $1\nparams: 5f4dcc3b5aa765d61d8327deb882cf99,"x"', {
      cause,
    });
    const line = JSON.stringify(loggableError(err));
    expect(line).not.toContain("5f4dcc3b5aa765d61d8327deb882cf99");
    expect(line).not.toContain("sbp_secret_hash");
    expect(line).toContain("Failed query: select 1 where x = $1");
    expect(line).toContain("22P02");
  });

  it("no request above wrote a 500 or a query parameter to the log", () => {
    const logs = t.logs.join("\n");
    expect(logs).not.toMatch(/"status":500/);
    expect(logs).not.toMatch(/params: (?!\[omitted\])/);
  });
});
