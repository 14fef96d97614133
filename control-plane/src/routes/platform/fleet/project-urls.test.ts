import type { ServerFrame } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { auditLog, projects } from "../../../db/schema.js";
import { rerenderForDomainChange } from "../../../services/projects/url-domains.js";
import { refFromHostHeader } from "../../../services/projects/urls.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { createOrg, createProjectViaApi } from "../../../test-support/projects-factory.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const app = (): TestApp => {
  if (!t) throw new Error("no test app");
  return t;
};

async function setUp(env: Record<string, string>) {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", ...env });
  const admin = await signUpAndLogin(app());
  const org = await createOrg(app(), admin);
  const host = await enrollHost(app(), admin);
  // The upstream-layout release: its GoTrue, Storage and Studio read SUPABASE_PUBLIC_URL.
  const project = await createProjectViaApi(app(), admin, org, { release: "supabase-v0.8.2" });
  await host.conn.settle();
  return { admin, org, host, ref: project.ref };
}

const get = async (path: string, who: TestUser) => {
  const res = await app().request(path, { token: who.token });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Record<string, unknown>;
};

/** The environment the last apply for `ref` rendered for the stack (what the release's services read). */
function renderedEnv(frames: ServerFrame[], ref: string): Record<string, string> {
  const applies = frames.filter((f) => f.type === "apply" && f.ref === ref && f.stack);
  const last = applies.at(-1);
  return last?.type === "apply" ? (last.stack?.env ?? {}) : {};
}

describe("project URLs", () => {
  it("a changed projects domain re-renders every live project's stack with the new URLs", async () => {
    const { ref, host } = await setUp({ SUPAMANAGER_PROJECTS_DOMAIN: "old.example.com" });
    const [before] = await app().deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    expect(renderedEnv(host.conn.sent, ref).SUPABASE_PUBLIC_URL).toBe(`https://${ref}.old.example.com`);
    // Same domains: nothing to do (what every start of an unchanged control plane sees).
    expect(await rerenderForDomainChange(app().deps)).toEqual([]);
    // What a restart with SUPAMANAGER_PROJECTS_DOMAIN=new.example.com starts with.
    (app().deps.config.projects as { domain?: string }).domain = "new.example.com";
    expect(await rerenderForDomainChange(app().deps)).toEqual([ref]);
    await host.conn.settle();
    const [after] = await app().deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    expect(after?.specVersion).toBe((before?.specVersion ?? 0) + 1);
    expect(renderedEnv(host.conn.sent, ref).SUPABASE_PUBLIC_URL).toBe(`https://${ref}.new.example.com`);
    // Once re-rendered, a second check finds nothing left.
    expect(await rerenderForDomainChange(app().deps)).toEqual([]);
  });

  it("without a projects domain: the gateway's port on the host's bind address, as before", async () => {
    const { admin, ref, host } = await setUp({});
    const detail = await get(`/platform/projects/${ref}`, admin);
    expect(detail.restUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/rest\/v1\/$/);
    const settings = (await get(`/platform/projects/${ref}/settings`, admin)) as { app_config: Record<string, string> };
    expect(settings.app_config.protocol).toBe("http");
    expect(settings.app_config.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    const hosts = (await get("/platform/fleet/hosts", admin)) as unknown as {
      reachability: string;
      projects: unknown[];
    }[];
    expect(hosts[0]).toMatchObject({
      reachability: "direct",
      projects: [{ ref, url: `http://${settings.app_config.endpoint}` }],
    });
    expect(renderedEnv(host.conn.sent, ref).SUPABASE_PUBLIC_URL).toBe(`http://${settings.app_config.endpoint}`);
  });

  it("with SUPAMANAGER_PROJECTS_DOMAIN: https://<ref>.<domain> everywhere SupaManager hands out a URL", async () => {
    const { admin, ref, host } = await setUp({ SUPAMANAGER_PROJECTS_DOMAIN: "Projects.Example.com" });
    const url = `https://${ref}.projects.example.com`;
    const detail = await get(`/platform/projects/${ref}`, admin);
    expect(detail.restUrl).toBe(`${url}/rest/v1/`);
    const settings = (await get(`/platform/projects/${ref}/settings`, admin)) as { app_config: Record<string, string> };
    expect(settings.app_config).toMatchObject({
      protocol: "https",
      endpoint: `${ref}.projects.example.com`,
      storage_endpoint: `${ref}.projects.example.com`,
    });
    const hosts = (await get("/platform/fleet/hosts", admin)) as unknown as { projects: unknown[] }[];
    expect(hosts[0]?.projects).toEqual([{ ref, name: "My Project", url }]);
    // GoTrue's API_EXTERNAL_URL and Storage's public URL follow SUPABASE_PUBLIC_URL in every release.
    expect(renderedEnv(host.conn.sent, ref).SUPABASE_PUBLIC_URL).toBe(url);
  });

  it("a host switched to tunnel mode: its projects move to the tunnel domain and are rendered again", async () => {
    const { admin, ref, host } = await setUp({
      SUPAMANAGER_PROJECTS_DOMAIN: "projects.example.com",
      SUPAMANAGER_TUNNEL_DOMAIN: "tunnel.example.net",
    });
    const [before] = await app().deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    const res = await app().request(`/platform/fleet/hosts/${host.hostId}`, {
      method: "PATCH",
      token: admin.token,
      json: { reachability: "tunnel" },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({
      reachability: "tunnel",
      projects: [{ ref, url: `https://${ref}.tunnel.example.net` }],
    });
    const [after] = await app().deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    expect(after?.specVersion).toBe((before?.specVersion ?? 0) + 1);
    // The agent is told to reconnect, so that its welcome says whether to open the tunnel.
    expect(host.conn.closedWith?.code).toBe(4003);
    // Its next welcome tells it to open the tunnel (where this runtime relays: Node).
    app().deps.tunnelUpgrade = () => new Response(null, { status: 501 });
    const again = new FakeConnection(app(), host.hostId);
    await again.hello();
    expect(again.ofType("welcome")[0]?.tunnel).toBe(true);
    const detail = await get(`/platform/projects/${ref}`, admin);
    expect(detail.restUrl).toBe(`https://${ref}.tunnel.example.net/rest/v1/`);
    const [audit] = await app()
      .deps.database.db.select()
      .from(auditLog)
      .where(eq(auditLog.action, "fleet.host.reachability"));
    expect(audit?.details).toMatchObject({ from: "direct", to: "tunnel" });

    const bad = await app().request(`/platform/fleet/hosts/${host.hostId}`, {
      method: "PATCH",
      token: admin.token,
      json: { reachability: "carrier-pigeon" },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/direct, ingress, tunnel/);
  });

  it("an agent may ask for tunnel mode when it joins", async () => {
    t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
    const admin = await signUpAndLogin(app());
    const tokenRes = await app().request("/platform/fleet/join-tokens", {
      method: "POST",
      token: admin.token,
      json: { region: "local" },
    });
    const { token } = (await tokenRes.json()) as { token: string };
    const res = await app().request("/agent/v1/join", {
      method: "POST",
      json: { token, hostname: "behind-nat", reachability: "tunnel" },
    });
    expect(res.status).toBe(201);
    const hosts = (await get("/platform/fleet/hosts", admin)) as unknown as { reachability: string }[];
    expect(hosts[0]?.reachability).toBe("tunnel");
  });
});

describe("refFromHostHeader", () => {
  const config = { projects: { domain: "projects.example.com", tunnelDomain: "tunnel.example.net" } };
  it.each([
    ["abcdefghijklmnopqrst.tunnel.example.net", "abcdefghijklmnopqrst"],
    ["ABCDEFGHIJKLMNOPQRST.Tunnel.Example.Net:443", "abcdefghijklmnopqrst"],
    ["abcdefghijklmnopqrst.projects.example.com.", "abcdefghijklmnopqrst"],
    ["abcdefghijklmnopqrst.example.net", null],
    ["x.abcdefghijklmnopqrst.tunnel.example.net", null],
    ["abcdefghijklmnopqrs.tunnel.example.net", null],
    ["tunnel.example.net", null],
    [undefined, null],
  ])("%s → %s", (header, ref) => {
    expect(refFromHostHeader(config, header)).toBe(ref);
  });
});
