import { z } from "zod";
import {
  COMPUTE_SIZES,
  type CommandSpec,
  checkArg,
  enumOption,
  HostId,
  intOption,
  type ParsedInput,
  ProjectRef,
  requiredString,
  stringOption,
} from "./args.js";
import { ApiClient, ApiRequestError, normaliseUrl } from "./client.js";
import { readConfig, removeConfig, writeConfig } from "./config.js";
import { CliError, EXIT, type ExitCode, usageError } from "./errors.js";
import { ago, bytes, plural, table, timestamp } from "./format.js";
import { client } from "./session.js";
import { runSmoke, type StepResult } from "./smoke.js";
import { FLEET_COMMANDS, PROJECT_UPGRADE_COMMANDS } from "./upgrades.js";
import { type LiveLine, WAIT_GOALS, type WaitGoal, waitForStatus } from "./wait.js";

/** What a command prints: `data` as JSON with --json, `human` otherwise. */
export interface Output {
  data: unknown;
  human: string;
  /** Exit code when the command ran but its outcome is a failure (default: 0). */
  exitCode?: ExitCode;
}

export interface RunContext {
  input: ParsedInput;
  env: NodeJS.ProcessEnv;
  configPath: string;
  hostname: string;
  /** A progress line on stderr (never on stdout, so --json output stays clean). */
  progress: (line: string) => void;
  /** A live status line, when stderr is a terminal. */
  live?: () => LiveLine;
  pollIntervalMs: number;
}

export type Run = (ctx: RunContext) => Promise<Output>;
export type Command = CommandSpec<Run>;

export const GROUPS: Record<string, string> = {
  hosts: "Docker hosts of the fleet: list, enroll (join tokens), cordon, drain, remove. Instance admins only.",
  regions: "Regions: the places hosts are enrolled into. Instance admins only.",
  orgs: "Organizations you are a member of.",
  projects: "Projects: list, create, pause, restore, restart, upgrade, delete.",
  fleet: "Fleet-wide operations: upgrade every project of an organization or a region. Instance admins only.",
};

// ---- Credentials ----

const Anything = z.unknown();

// ---- login / logout ----

const Session = z.looseObject({ access_token: z.string() });
const CreatedToken = z.looseObject({ id: z.string().optional(), token: z.string() });
const Profile = z.looseObject({ primary_email: z.string().optional(), username: z.string().optional() });

const login: Command = {
  path: ["login"],
  summary: "Log in to a control plane and store the token",
  description:
    "Log in to a control plane. With --email/--password, signs in and creates a personal access token\n" +
    'named "supamanager-cli@<hostname>"; with --token, stores that token (sbp_…). Either way the token is\n' +
    "checked, then {url, token} is written to $SUPAMANAGER_CONFIG or ~/.config/supamanager/config.json\n" +
    "(mode 0600). The token is never printed.",
  options: {
    email: { type: "string", placeholder: "email", description: "Dashboard account email" },
    password: {
      type: "string",
      placeholder: "password",
      description: "Its password (default: $SUPAMANAGER_PASSWORD; prefer the variable over the flag)",
    },
  },
  examples: [
    "SUPAMANAGER_PASSWORD=… supamanager login --url https://cp.example.com --email ops@example.com",
    "supamanager login --url https://cp.example.com --token sbp_…",
  ],
  run: async (ctx) => {
    const rawUrl = ctx.input.url ?? ctx.env.SUPAMANAGER_URL;
    if (!rawUrl) throw usageError("--url is required (or set SUPAMANAGER_URL)");
    const url = normaliseUrl(rawUrl);
    const email = stringOption(ctx.input.values, "email");
    const api = new ApiClient(url, undefined);
    let token = ctx.input.token;
    let tokenId: string | undefined;
    if (email !== undefined) {
      if (token !== undefined) throw usageError("give either --email/--password or --token, not both");
      const password = stringOption(ctx.input.values, "password") ?? ctx.env.SUPAMANAGER_PASSWORD;
      if (!password) throw usageError("--password is required with --email (or set SUPAMANAGER_PASSWORD)");
      const session = await api.request(Session, "POST", "/auth/v1/token", {
        query: { grant_type: "password" },
        body: { email, password },
      });
      let created: z.output<typeof CreatedToken>;
      try {
        created = await api.request(CreatedToken, "POST", "/platform/profile/access-tokens", {
          token: session.access_token,
          body: { name: `supamanager-cli@${ctx.hostname}` },
        });
      } catch (err) {
        if (err instanceof ApiRequestError && err.status === 404) {
          throw new CliError(
            `${url} does not issue personal access tokens; log in with --token instead`,
            EXIT.refused,
            err.details,
          );
        }
        throw err;
      } finally {
        // The dashboard session was only needed to mint the token.
        await api
          .request(Anything, "POST", "/auth/v1/logout", { token: session.access_token, query: { scope: "local" } })
          .catch(() => undefined);
      }
      token = created.token;
      tokenId = created.id;
    } else {
      token ??= ctx.env.SUPAMANAGER_TOKEN;
      if (!token) throw usageError("give --email (with --password) or --token");
    }
    const profile = await api.request(Profile, "GET", "/platform/profile", { token });
    const who = profile.primary_email ?? profile.username ?? email;
    writeConfig(ctx.configPath, {
      url,
      token,
      ...(tokenId ? { token_id: tokenId } : {}),
      ...(who ? { email: who } : {}),
    });
    return {
      data: { url, email: who ?? null, config_path: ctx.configPath, token_id: tokenId ?? null },
      human: `Logged in to ${url}${who ? ` as ${who}` : ""}. Token stored in ${ctx.configPath}.`,
    };
  },
};

const logout: Command = {
  path: ["logout"],
  summary: "Revoke the stored token (when login created it) and forget it",
  description:
    "Forget the stored login. A personal access token created by `supamanager login --email` is revoked\n" +
    "on the control plane first (best effort); a token given with --token is only forgotten.",
  run: async (ctx) => {
    const stored = readConfig(ctx.configPath);
    if (!stored) return { data: { logged_out: false, revoked: false }, human: "Not logged in." };
    let revoked = false;
    if (stored.token_id) {
      const api = new ApiClient(normaliseUrl(stored.url), stored.token, 10_000);
      revoked = await api
        .request(Anything, "DELETE", `/platform/profile/access-tokens/${encodeURIComponent(stored.token_id)}`)
        .then(
          () => true,
          () => false,
        );
    }
    removeConfig(ctx.configPath);
    return {
      data: { logged_out: true, revoked, url: stored.url },
      human: `Logged out of ${stored.url}${revoked ? " (token revoked)" : ""}.`,
    };
  },
};

const SignedUp = z.looseObject({ id: z.union([z.string(), z.number()]), email: z.string() });

const signup: Command = {
  path: ["signup"],
  summary: "Create a dashboard account (the first one becomes the instance admin)",
  description:
    "Create a dashboard account on a control plane (POST /platform/signup). The very first account is\n" +
    "the instance admin and may always sign up; later ones only when the control plane allows sign-up\n" +
    "(SUPAMANAGER_ALLOW_SIGNUP). Nothing is stored: log in afterwards with `supamanager login`.",
  options: {
    email: { type: "string", placeholder: "email", description: "Account email" },
    password: {
      type: "string",
      placeholder: "password",
      description: "Password, at least 8 characters (default: $SUPAMANAGER_PASSWORD; prefer the variable)",
    },
  },
  examples: ["SUPAMANAGER_PASSWORD=… supamanager signup --url http://127.0.0.1:8080 --email you@example.com"],
  run: async (ctx) => {
    const rawUrl = ctx.input.url ?? ctx.env.SUPAMANAGER_URL;
    if (!rawUrl) throw usageError("--url is required (or set SUPAMANAGER_URL)");
    const url = normaliseUrl(rawUrl);
    const email = requiredString(ctx.input.values, "email");
    const password = stringOption(ctx.input.values, "password") ?? ctx.env.SUPAMANAGER_PASSWORD;
    if (!password) throw usageError("--password is required (or set SUPAMANAGER_PASSWORD)");
    const r = await new ApiClient(url, undefined).request(SignedUp, "POST", "/platform/signup", {
      body: { email, password },
    });
    return {
      data: { id: r.id, email: r.email, url },
      human: `Account ${r.email} created on ${url}. Log in with: supamanager login --url ${url} --email ${r.email}`,
    };
  },
};

// ---- hosts / regions ----

const Host = z.looseObject({
  id: z.string(),
  name: z.string(),
  region: z.string(),
  status: z.string(),
  cordoned: z.boolean(),
  draining: z.boolean(),
  bind_address: z.string().optional(),
  reachability: z.string().optional(),
  ingress: z
    .looseObject({
      state: z.string(),
      projects: z.number(),
      port: z.number().optional(),
      message: z.string().optional(),
    })
    .nullable()
    .optional(),
  agent_version: z.string().nullable().optional(),
  // Absent from control planes older than ADR 0040.
  agent_wanted_version: z.string().nullable().optional(),
  agent_status: z.string().optional(),
  agent_behind: z.boolean().optional(),
  agent_status_reason: z.string().nullable().optional(),
  capacity: z.looseObject({
    cpus: z.number().nullable(),
    mem_total_bytes: z.number().nullable(),
    mem_free_bytes: z.number().nullable(),
    mem_reserved_bytes: z.number().nullable(),
    load1: z.number().nullable(),
  }),
  project_count: z.number(),
  projects: z.array(z.looseObject({ ref: z.string(), name: z.string(), url: z.string().nullable() })).optional(),
  last_seen_at: z.string().nullable(),
});
type Host = z.output<typeof Host>;

const scheduling = (h: Host) => (h.draining ? "draining" : h.cordoned ? "cordoned" : "yes");

/** `ingress (running, 2 projects)`: the mode, and for an ingress host what its proxy does (ADR 0036). */
function reachedBy(h: Host): string {
  const mode = h.reachability ?? "direct";
  if (mode !== "ingress") return mode;
  const i = h.ingress;
  if (!i) return "ingress (not reported)";
  return i.state === "running"
    ? `ingress (running, ${i.projects} project${i.projects === 1 ? "" : "s"})`
    : `ingress (${i.state})`;
}

/** Hosts whose ingress failed, with the agent's message (what to do next). */
export function ingressProblems(hosts: Host[]): string {
  return hosts
    .filter((h) => h.ingress?.state === "error")
    .map((h) => `Host ${h.id} (${h.name}) ingress error: ${h.ingress?.message ?? "no detail reported"}`)
    .join("\n");
}

/** The agent's version, and where it stands against the wanted one (ADR 0040). */
function agentCell(h: Host): string {
  const v = h.agent_version ?? "-";
  switch (h.agent_status) {
    case "update_pending":
      return `${v} → ${h.agent_wanted_version} pending`;
    case "update_failed":
      return `${v} (${h.agent_wanted_version} failed)`;
    case "behind":
      return `${v} (behind)`;
    default:
      return v;
  }
}

/** Hosts whose agent is behind, with why (a failed update's reason), for below the hosts table. */
export function agentsBehind(hosts: Host[]): string | null {
  const behind = hosts.filter((h) => h.agent_behind && h.agent_status_reason);
  if (behind.length === 0) return null;
  return [
    `Agents behind (${behind.length}):`,
    ...behind.map((h) => `  ${h.id} ${h.name}: ${h.agent_status_reason}`),
  ].join("\n");
}

export function hostsTable(hosts: Host[], now = Date.now()): string {
  return table(
    [
      "ID",
      "NAME",
      "REGION",
      "STATUS",
      "SCHEDULABLE",
      "REACHED BY",
      "CPUS",
      "MEM FREE/TOTAL",
      "RESERVED",
      "LOAD",
      "PROJECTS",
      "LAST SEEN",
      "AGENT",
    ],
    hosts.map((h) => [
      h.id,
      h.name,
      h.region,
      h.status,
      scheduling(h),
      reachedBy(h),
      h.capacity.cpus,
      `${bytes(h.capacity.mem_free_bytes)}/${bytes(h.capacity.mem_total_bytes)}`,
      bytes(h.capacity.mem_reserved_bytes),
      h.capacity.load1?.toFixed(2),
      h.project_count,
      ago(h.last_seen_at, now),
      agentCell(h),
    ]),
  );
}

/** Each host's projects with the URL apps call them at. */
export function hostProjectsTable(hosts: Host[]): string {
  const rows = hosts.flatMap((h) => (h.projects ?? []).map((p) => [h.id, p.ref, p.name, p.url ?? "(not yet)"]));
  return table(["HOST", "PROJECT", "NAME", "URL"], rows);
}

const hostsList: Command = {
  path: ["hosts", "list"],
  summary: "List hosts with status, capacity, reachability mode, and their projects' URLs",
  run: async (ctx) => {
    const hosts = await client(ctx).request(z.array(Host), "GET", "/platform/fleet/hosts");
    const anyProject = hosts.some((h) => (h.projects ?? []).length > 0);
    const behind = agentsBehind(hosts);
    return {
      data: hosts,
      human: hosts.length
        ? `${hostsTable(hosts)}${anyProject ? `\n\n${hostProjectsTable(hosts)}` : ""}${
            ingressProblems(hosts) ? `\n\n${ingressProblems(hosts)}` : ""
          }${behind ? `\n\n${behind}` : ""}`
        : "No hosts enrolled. Create a join token with `supamanager hosts join-token --region <region>`.",
    };
  },
};

const hostsReachability: Command = {
  path: ["hosts", "reachability"],
  summary: "Set how apps reach a host's projects: direct, ingress or tunnel",
  description:
    "direct: the projects' published ports (or your own proxy under SUPAMANAGER_PROJECTS_DOMAIN).\n" +
    "tunnel: the control plane serves https://<ref>.<tunnel domain> and relays to the agent (hosts behind NAT).\n" +
    "The host's projects are re-rendered with their new URL and the agent reconnects.",
  args: [
    { name: "id", description: "Host id (host_…)" },
    { name: "mode", description: "direct | ingress | tunnel" },
  ],
  examples: ["supamanager hosts reachability host_abcdefghijklmnopqrst tunnel"],
  run: async (ctx) => {
    const id = checkArg(HostId, ctx.input.args.id as string, "id");
    const mode = checkArg(z.enum(["direct", "ingress", "tunnel"]), ctx.input.args.mode as string, "mode");
    const h = await client(ctx).request(Host, "PATCH", `/platform/fleet/hosts/${id}`, { body: { reachability: mode } });
    return { data: h, human: `Host ${h.id} (${h.name}) is reached by: ${h.reachability ?? mode}.` };
  },
};

/** The data directory the printed join line uses (a real path, so the line can be pasted as is). */
const AGENT_DATA_DIR = "/var/lib/supamanager-agent";

const JoinToken = z.looseObject({ token: z.string(), expires_at: z.string(), region: z.string(), uses: z.number() });

const hostsJoinToken: Command = {
  path: ["hosts", "join-token"],
  summary: "Create a join token that enrolls hosts into a region",
  description:
    "Create a join token (smj_…) for a region; it is shown once. Use it on the new host with\n" +
    "`supamanager-agent join --url <control plane> --token smj_… --data-dir <dir>`.",
  options: {
    region: {
      type: "string",
      placeholder: "region",
      description: "Region the hosts join (lowercase letters, digits, dashes; created by the first host)",
    },
    uses: { type: "string", placeholder: "n", description: "How many hosts may join with it (1-1000, default 1)" },
    "expires-in": {
      type: "string",
      placeholder: "seconds",
      description: "Lifetime in seconds (60-604800, default 3600)",
    },
  },
  examples: ["supamanager hosts join-token --region eu-1 --uses 3 --expires-in 7200"],
  run: async (ctx) => {
    const v = ctx.input.values;
    const region = requiredString(v, "region");
    const uses = intOption(v, "uses", 1, 1000);
    const expires = intOption(v, "expires-in", 60, 604_800);
    const api = client(ctx);
    const t = await api.request(JoinToken, "POST", "/platform/fleet/join-tokens", {
      body: {
        region,
        ...(uses !== undefined ? { uses } : {}),
        ...(expires !== undefined ? { expires_in_seconds: expires } : {}),
      },
    });
    return {
      data: t,
      human: [
        `Join token for region ${t.region} (${plural(t.uses, "use")}, expires ${timestamp(t.expires_at)}), shown once:`,
        "",
        `  ${t.token}`,
        "",
        "On the new host, in a SupaManager checkout after `npm ci` (the host must reach this URL):",
        `  npx supamanager-agent join --url ${api.baseUrl} --token ${t.token} --data-dir ${AGENT_DATA_DIR}`,
        `  npx supamanager-agent run --data-dir ${AGENT_DATA_DIR}`,
      ].join("\n"),
    };
  },
};

function hostFlag(action: "cordon" | "uncordon" | "drain", summary: string, done: string): Command {
  return {
    path: ["hosts", action],
    summary,
    args: [{ name: "id", description: "Host id (host_…), from `supamanager hosts list`" }],
    run: async (ctx) => {
      const id = checkArg(HostId, ctx.input.args.id as string, "id");
      const h = await client(ctx).request(Host, "POST", `/platform/fleet/hosts/${id}/${action}`);
      return { data: h, human: `Host ${h.id} (${h.name}) ${done}; schedulable: ${scheduling(h)}.` };
    },
  };
}

const hostsRemove: Command = {
  path: ["hosts", "remove"],
  summary: "Remove a host and revoke its credential",
  description:
    "Remove a host: its credential is revoked and its connection closed. Refused (exit 2) while projects\n" +
    "remain on it, unless --force; projects left behind by a forced removal read UNKNOWN.",
  args: [{ name: "id", description: "Host id (host_…)" }],
  options: { force: { type: "boolean", description: "Remove even though projects remain on the host" } },
  run: async (ctx) => {
    const id = checkArg(HostId, ctx.input.args.id as string, "id");
    const force = ctx.input.values.force === true;
    const r = await client(ctx).request(
      z.looseObject({ id: z.string(), removed: z.boolean() }),
      "DELETE",
      `/platform/fleet/hosts/${id}`,
      {
        query: force ? { force: "true" } : {},
      },
    );
    return { data: r, human: `Host ${r.id} removed.` };
  },
};

const Region = z.looseObject({
  code: z.string(),
  hosts: z.number(),
  online_hosts: z.number(),
  schedulable_hosts: z.number(),
});

const regionsList: Command = {
  path: ["regions", "list"],
  summary: "List regions with their host counts",
  run: async (ctx) => {
    const regions = await client(ctx).request(z.array(Region), "GET", "/platform/fleet/regions");
    return {
      data: regions,
      human: regions.length
        ? table(
            ["REGION", "HOSTS", "ONLINE", "SCHEDULABLE"],
            regions.map((r) => [r.code, r.hosts, r.online_hosts, r.schedulable_hosts]),
          )
        : "No regions yet: a region exists once a host is enrolled into it.",
    };
  },
};

// ---- releases ----

const Release = z.looseObject({
  name: z.string(),
  upstream: z.string().nullable(),
  parts: z.array(z.string()),
  default_parts: z.array(z.string()),
  minimum_memory_bytes: z.number(),
  minimum_compute_size: z.string().nullable(),
  default: z.boolean(),
});

const releasesList: Command = {
  path: ["releases"],
  summary: "List the releases projects can run: upstream version, parts, minimum size, default",
  description:
    "List the releases this control plane runs. `projects create --release <name> --parts <a,b>` picks one\n" +
    "and its optional parts; the minimum size is that of the default parts. Instance admins only.",
  run: async (ctx) => {
    const releases = await client(ctx).request(z.array(Release), "GET", "/platform/fleet/releases");
    return {
      data: releases,
      human: table(
        ["NAME", "DEFAULT", "UPSTREAM", "PARTS (DEFAULT *)", "MINIMUM"],
        releases.map((r) => [
          r.name,
          r.default ? "yes" : "",
          r.upstream ?? "—",
          r.parts.map((p) => (r.default_parts.includes(p) ? `${p}*` : p)).join(", ") || "—",
          `${r.minimum_compute_size ?? "none fits"} (${bytes(r.minimum_memory_bytes)})`,
        ]),
      ),
    };
  },
};

// ---- organizations ----

const Org = z.looseObject({
  id: z.number().optional(),
  slug: z.string(),
  name: z.string(),
  plan: z.looseObject({ name: z.string() }).optional(),
});

const orgsList: Command = {
  path: ["orgs", "list"],
  summary: "List the organizations you belong to",
  run: async (ctx) => {
    const orgs = await client(ctx).request(z.array(Org), "GET", "/platform/organizations");
    return {
      data: orgs,
      human: orgs.length
        ? table(
            ["SLUG", "NAME", "PLAN"],
            orgs.map((o) => [o.slug, o.name, o.plan?.name]),
          )
        : "No organizations.",
    };
  },
};

const ORG_TIERS = ["tier_free", "tier_pro", "tier_payg", "tier_team", "tier_enterprise"] as const;

const orgsCreate: Command = {
  path: ["orgs", "create"],
  summary: "Create an organization (you become its owner)",
  description:
    "Create an organization. Its slug (printed) is what `projects create --org` takes. Every tier runs on\n" +
    "the free plan here; the tier is recorded because Studio asks for one.",
  options: {
    name: { type: "string", placeholder: "name", description: "Organization name" },
    tier: { type: "string", placeholder: "tier", description: `${ORG_TIERS.join(", ")} (default tier_free)` },
  },
  examples: ["supamanager orgs create --name acme"],
  run: async (ctx) => {
    const name = requiredString(ctx.input.values, "name");
    const tier = enumOption(ctx.input.values, "tier", ORG_TIERS) ?? "tier_free";
    const o = await client(ctx).request(Org, "POST", "/platform/organizations", { body: { name, tier } });
    return {
      data: { id: o.id ?? null, slug: o.slug, name: o.name },
      human: `Organization ${o.name} created; its slug is ${o.slug}.`,
    };
  },
};

// ---- projects ----

const Pagination = z.looseObject({ count: z.number() });
const ListItem = z.looseObject({
  ref: z.string(),
  name: z.string(),
  status: z.string(),
  region: z.string(),
  organization_slug: z.string().optional(),
  infra_compute_size: z.string().optional(),
  inserted_at: z.string(),
  databases: z.array(z.looseObject({ infra_compute_size: z.string().optional() })).optional(),
});
const ProjectPage = z.looseObject({ pagination: Pagination, projects: z.array(ListItem) });

export interface ProjectRow {
  ref: string;
  name: string;
  organization_slug: string | null;
  status: string;
  region: string;
  compute_size: string | null;
  inserted_at: string;
}

export function projectsTable(rows: ProjectRow[]): string {
  return table(
    ["REF", "NAME", "ORG", "STATUS", "REGION", "SIZE", "CREATED"],
    rows.map((p) => [p.ref, p.name, p.organization_slug, p.status, p.region, p.compute_size, timestamp(p.inserted_at)]),
  );
}

const PAGE = 1000;

const projectsList: Command = {
  path: ["projects", "list"],
  summary: "List projects (of every organization you belong to, or of one)",
  options: { org: { type: "string", placeholder: "slug", description: "Only this organization's projects" } },
  run: async (ctx) => {
    const org = stringOption(ctx.input.values, "org");
    const api = client(ctx);
    const path = org ? `/platform/organizations/${encodeURIComponent(org)}/projects` : "/platform/projects";
    const rows: ProjectRow[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await api.request(ProjectPage, "GET", path, { query: { limit: PAGE, offset } });
      for (const p of page.projects) {
        rows.push({
          ref: p.ref,
          name: p.name,
          organization_slug: p.organization_slug ?? org ?? null,
          status: p.status,
          region: p.region,
          compute_size: p.infra_compute_size ?? p.databases?.[0]?.infra_compute_size ?? null,
          inserted_at: p.inserted_at,
        });
      }
      if (page.projects.length < PAGE || rows.length >= page.pagination.count) break;
    }
    return { data: rows, human: rows.length ? projectsTable(rows) : "No projects." };
  },
};

const WAIT_OPTIONS = {
  wait: {
    type: "boolean",
    description: "Wait until the operation finishes, printing each status change on stderr",
  },
  timeout: {
    type: "string",
    placeholder: "seconds",
    description: "Give up waiting after this long (default 600); exit 4",
  },
} as const;

async function maybeWait(
  ctx: RunContext,
  api: ApiClient,
  ref: string,
  goal: WaitGoal,
  initial: string | undefined,
): Promise<string | undefined> {
  if (ctx.input.values.wait !== true) {
    if (ctx.input.values.timeout !== undefined) throw usageError("--timeout only makes sense with --wait");
    return undefined;
  }
  const timeout = intOption(ctx.input.values, "timeout", 1, 86_400) ?? 600;
  return waitForStatus(api, ref, goal, {
    timeoutMs: timeout * 1000,
    intervalMs: ctx.pollIntervalMs,
    progress: ctx.progress,
    ...(ctx.live ? { live: ctx.live() } : {}),
    ...(initial !== undefined ? { initial } : {}),
  });
}

const Created = z.looseObject({
  id: z.number(),
  ref: z.string(),
  name: z.string(),
  status: z.string(),
  region: z.string(),
  organization_slug: z.string().optional(),
  infra_compute_size: z.string().optional(),
  endpoint: z.string().optional(),
});

const projectsCreate: Command = {
  path: ["projects", "create"],
  summary: "Create a project",
  description:
    "Create a project in an organization. It is placed on the online, schedulable host of the region with\n" +
    "the most free memory. With --wait, waits until it is ACTIVE_HEALTHY (exit 4 if it ends INIT_FAILED).",
  options: {
    org: { type: "string", placeholder: "slug", description: "Organization slug (see `supamanager orgs list`)" },
    name: { type: "string", placeholder: "name", description: "Project name" },
    "db-password": {
      type: "string",
      placeholder: "password",
      description: "Database password, 8-128 characters (default: $SUPAMANAGER_DB_PASSWORD)",
    },
    region: { type: "string", placeholder: "region", description: "Region (default: any region with room)" },
    size: {
      type: "string",
      placeholder: "size",
      description: `Compute size: ${COMPUTE_SIZES.join(", ")} (default: the release's minimum)`,
    },
    release: {
      type: "string",
      placeholder: "name",
      description: "Release to run (see `supamanager releases`; default: the control plane's default)",
    },
    parts: {
      type: "string",
      placeholder: "a,b",
      description: "The release's optional parts, comma-separated: logs, realtime, storage, functions ('' for none)",
    },
    ...WAIT_OPTIONS,
  },
  examples: [
    "supamanager projects create --org acme --name shop --db-password '…' --region eu-1 --wait",
    "supamanager projects create --org acme --name api --db-password '…' --release supabase-v0.8.2 --parts storage",
  ],
  run: async (ctx) => {
    const v = ctx.input.values;
    const org = requiredString(v, "org");
    const name = requiredString(v, "name");
    const password = stringOption(v, "db-password") ?? ctx.env.SUPAMANAGER_DB_PASSWORD;
    if (!password) throw usageError("--db-password is required (or set SUPAMANAGER_DB_PASSWORD)");
    const region = stringOption(v, "region");
    const size = enumOption(v, "size", COMPUTE_SIZES);
    const release = stringOption(v, "release");
    const partsText = stringOption(v, "parts");
    const parts =
      partsText === undefined
        ? undefined
        : partsText
            .split(",")
            .map((p) => p.trim())
            .filter(Boolean);
    const api = client(ctx);
    const p = await api.request(Created, "POST", "/platform/projects", {
      body: {
        name,
        organization_slug: org,
        db_pass: password,
        ...(region !== undefined ? { db_region: region } : {}),
        ...(size !== undefined ? { desired_instance_size: size } : {}),
        ...(release !== undefined ? { release } : {}),
        ...(parts !== undefined ? { parts } : {}),
      },
    });
    const status = (await maybeWait(ctx, api, p.ref, WAIT_GOALS.create, p.status)) ?? p.status;
    // An explicit object: the create answer may carry API keys, which are not printed here.
    const data = {
      id: p.id,
      ref: p.ref,
      name: p.name,
      organization_slug: p.organization_slug ?? org,
      status,
      region: p.region,
      compute_size: p.infra_compute_size ?? null,
      endpoint: p.endpoint ?? null,
    };
    return { data, human: `Project ${p.ref} (${p.name}) created in ${p.region}: ${status}.` };
  },
};

const Detail = z.looseObject({
  id: z.number(),
  ref: z.string(),
  name: z.string(),
  status: z.string(),
  region: z.string(),
  organization_slug: z.string().optional(),
  infra_compute_size: z.string().optional(),
  inserted_at: z.string().optional(),
  restUrl: z.string().optional(),
  db_host: z.string().optional(),
  db_port: z.number().optional(),
  status_reason: z.string().optional(),
  pending_reason: z.string().optional(),
});

const REF_ARG = [{ name: "ref", description: "Project ref (20 lowercase letters), from `supamanager projects list`" }];

const projectsShow: Command = {
  path: ["projects", "show"],
  summary: "Show one project: status, reasons, endpoints",
  args: REF_ARG,
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const d = await client(ctx).request(Detail, "GET", `/platform/projects/${ref}`);
    const data = {
      id: d.id,
      ref: d.ref,
      name: d.name,
      status: d.status,
      status_reason: d.status_reason ?? null,
      pending_reason: d.pending_reason ?? null,
      region: d.region,
      compute_size: d.infra_compute_size ?? null,
      rest_url: d.restUrl ?? null,
      db_host: d.db_host ?? null,
      db_port: d.db_port ?? null,
      inserted_at: d.inserted_at ?? null,
    };
    const human = table(
      ["FIELD", "VALUE"],
      Object.entries(data).map(([k, val]) => [k, val]),
    );
    return { data, human };
  },
};

const Lifecycle = z.looseObject({
  id: z.number(),
  ref: z.string(),
  name: z.string(),
  status: z.string().optional(),
  pending_reason: z.string().optional(),
});

function lifecycle(action: "pause" | "restore" | "restart", summary: string, description: string): Command {
  return {
    path: ["projects", action],
    summary,
    description,
    args: REF_ARG,
    options: { ...WAIT_OPTIONS },
    run: async (ctx) => {
      const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
      const api = client(ctx);
      const r = await api.request(Lifecycle, "POST", `/platform/projects/${ref}/${action}`);
      const waited = await maybeWait(ctx, api, ref, WAIT_GOALS[action], r.status);
      const status = waited ?? r.status ?? "unknown";
      const pending = waited === undefined ? r.pending_reason : undefined;
      return {
        data: { id: r.id, ref: r.ref, name: r.name, status, pending_reason: pending ?? null },
        human: `Project ${r.ref} (${r.name}): ${status}${pending ? ` (waiting: ${pending})` : ""}.`,
      };
    },
  };
}

const projectsDelete: Command = {
  path: ["projects", "delete"],
  summary: "Delete a project (its containers and volumes go; irreversible)",
  description:
    "Delete a project: it reads GOING_DOWN until its host has removed its stack, then REMOVED (gone).\n" +
    "With --wait, waits until it is gone.",
  args: REF_ARG,
  options: { ...WAIT_OPTIONS },
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const api = client(ctx);
    const r = await api.request(Lifecycle, "DELETE", `/platform/projects/${ref}`);
    const status = (await maybeWait(ctx, api, ref, WAIT_GOALS.delete, r.status ?? "GOING_DOWN")) ?? "GOING_DOWN";
    return {
      data: { id: r.id, ref: r.ref, name: r.name, status },
      human:
        status === "REMOVED"
          ? `Project ${r.ref} (${r.name}) removed.`
          : `Project ${r.ref} (${r.name}) is being deleted (GOING_DOWN).`,
    };
  },
};

const LogsAnswer = z.object({
  ref: z.string(),
  service: z.string().optional(),
  lines: z.array(
    z.object({
      service: z.string(),
      stream: z.enum(["stdout", "stderr"]),
      text: z.string(),
      timestamp: z.string().optional(),
    }),
  ),
});

const projectsLogs: Command = {
  path: ["projects", "logs"],
  summary: "Show the last lines of a project's container logs",
  description:
    "Print the last lines (default 100, at most 1000) of the project's containers, oldest first, read by\n" +
    "its host agent. --service keeps one Compose service (db, meta, …). Exit 3 when the host is offline.",
  args: REF_ARG,
  options: {
    service: { type: "string", placeholder: "name", description: "Only this service's containers (e.g. db)" },
    tail: { type: "string", placeholder: "n", description: "How many lines (1-1000, default 100)" },
  },
  examples: ["supamanager projects logs abcdefghijklmnopqrst --service db --tail 50"],
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const service = stringOption(ctx.input.values, "service");
    const tail = intOption(ctx.input.values, "tail", 1, 1000);
    const r = await client(ctx).request(LogsAnswer, "GET", `/platform/projects/${ref}/logs`, {
      query: { service, tail },
    });
    const human = r.lines
      .map(
        (l) =>
          `${l.timestamp ? `${l.timestamp} ` : ""}${l.service}${l.stream === "stderr" ? " (stderr)" : ""} | ${l.text}`,
      )
      .join("\n");
    return { data: r, human: human === "" ? "(no log lines)" : human };
  },
};

const ApiKeyItem = z.looseObject({ name: z.string(), type: z.string(), api_key: z.string() });

const projectsApiKeys: Command = {
  path: ["projects", "api-keys"],
  summary: "Show a project's API keys (anon, service_role, publishable, secret)",
  description:
    "List a project's API keys (GET /v1/projects/{ref}/api-keys). Secret keys (service_role, secret) are\n" +
    "masked unless --reveal is given and your role may read them. With --json, an array of\n" +
    "{name, type, api_key, …}; `--json | jq -r '.[] | select(.name == \"anon\") | .api_key'` picks one.",
  args: REF_ARG,
  options: { reveal: { type: "boolean", description: "Show the secret keys' values too" } },
  examples: ["supamanager projects api-keys abcdefghijklmnopqrst --reveal"],
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const reveal = ctx.input.values.reveal === true;
    const keys = await client(ctx).request(z.array(ApiKeyItem), "GET", `/v1/projects/${ref}/api-keys`, {
      query: { reveal: reveal ? "true" : "false" },
    });
    return {
      data: keys,
      human: table(
        ["NAME", "TYPE", "KEY"],
        keys.map((k) => [k.name, k.type, k.api_key]),
      ),
    };
  },
};

const projectsSql: Command = {
  path: ["projects", "sql"],
  summary: "Run SQL on a project's database and print the rows",
  description:
    "Run one SQL text on the project's database through its host agent\n" +
    "(POST /v1/projects/{ref}/database/query) and print the rows as a table (--json: the row array).",
  args: REF_ARG,
  options: { query: { type: "string", placeholder: "sql", description: "The SQL to run" } },
  examples: ["supamanager projects sql abcdefghijklmnopqrst --query 'select version()'"],
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const query = requiredString(ctx.input.values, "query");
    const rows = await client(ctx).request(
      z.array(z.record(z.string(), z.unknown())),
      "POST",
      `/v1/projects/${ref}/database/query`,
      { body: { query } },
    );
    const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    const cell = (v: unknown) =>
      v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
    return {
      data: rows,
      human: rows.length
        ? table(
            columns,
            rows.map((r) => columns.map((c) => cell(r[c]))),
          )
        : "(no rows)",
    };
  },
};

const StackAnswer = z.looseObject({
  ref: z.string(),
  status: z.string(),
  release: z.string(),
  parts: z.array(z.string()).nullable(),
  services: z.looseObject({
    db: z.boolean(),
    gateway: z.boolean(),
    auth: z.boolean(),
    rest: z.boolean(),
    storage: z.boolean(),
    realtime: z.boolean(),
    functions: z.boolean(),
  }),
  api_url: z.string().nullable(),
});

/** A JWT (the legacy keys), not a masked value. */
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const MARK: Record<StepResult["status"], string> = { ok: "ok", failed: "FAILED", skipped: "skipped" };

export function smokeLine(r: StepResult): string {
  return `${MARK[r.status]} ${r.name}: ${r.detail}${r.status === "skipped" ? "" : ` (${r.ms} ms)`}`;
}

const projectsSmoke: Command = {
  path: ["projects", "smoke"],
  summary: "Check that a running project works: Auth, PostgREST, Storage, Realtime, a function",
  description:
    "Run a smoke check against a running project, from where this command runs, with the project's own\n" +
    "keys: the gateway answers (and refuses a request without a key); a scratch table is created, written\n" +
    "and read through the control plane's SQL path; a user signs up and signs in through Auth with the anon\n" +
    "key; a row is inserted and read through PostgREST; a file is uploaded and downloaded through Storage\n" +
    "(sha-256 compared); a Realtime broadcast comes back over the WebSocket; --function is called. Each step\n" +
    "is ok, failed (with the reason) or skipped (the project's release or parts do not run that service).\n" +
    "What it made (table, user, bucket) is removed at the end. Exit 4 when any step failed.\n" +
    "The API is reached at the project's gateway URL as the control plane knows it; when that address is\n" +
    "not reachable from here (a host's private interface), tunnel to it and give --api-url (docs/cli.md).",
  args: REF_ARG,
  options: {
    "api-url": {
      type: "string",
      placeholder: "url",
      description: "The project's API (gateway) URL as reached from here (default: the control plane's)",
    },
    function: { type: "string", placeholder: "name", description: "A deployed Edge Function to call (POST {})" },
    timeout: {
      type: "string",
      placeholder: "seconds",
      description: "Per request and per Realtime wait (1-300, default 15)",
    },
  },
  examples: [
    "supamanager projects smoke abcdefghijklmnopqrst",
    "ssh -N -L 18000:127.0.0.1:<gateway port> ops@host & supamanager projects smoke abcdefghijklmnopqrst --api-url http://127.0.0.1:18000 --json",
  ],
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const v = ctx.input.values;
    const fn = stringOption(v, "function");
    if (fn !== undefined && !/^[A-Za-z0-9_-]{1,128}$/.test(fn)) {
      throw usageError("--function must be a function name (letters, digits, - and _)");
    }
    const timeout = intOption(v, "timeout", 1, 300) ?? 15;
    const rawApiUrl = stringOption(v, "api-url");
    const api = client(ctx);
    const stack = await api.request(StackAnswer, "GET", `/platform/projects/${ref}/stack`);
    if (stack.status !== "ACTIVE_HEALTHY" && stack.status !== "ACTIVE_UNHEALTHY") {
      throw new CliError(`project ${ref} is ${stack.status}: the smoke check needs a running project`, EXIT.refused);
    }
    const apiUrl = rawApiUrl !== undefined ? normaliseUrl(rawApiUrl) : stack.api_url;
    if (!apiUrl) throw new CliError(`project ${ref} has no API address yet; give --api-url`, EXIT.refused);
    const keys = await api.request(z.array(ApiKeyItem), "GET", `/v1/projects/${ref}/api-keys`, {
      query: { reveal: "true" },
    });
    const key = (name: string) => {
      const k = keys.find((x) => x.name === name)?.api_key;
      return k !== undefined && JWT.test(k) ? k : undefined;
    };
    const anonKey = key("anon");
    const serviceKey = key("service_role");
    const live = ctx.live?.();
    const say = (line: string) => (live ? live.print(line) : ctx.progress(line));
    say(`Smoke check of ${ref} (release ${stack.release}) at ${apiUrl}`);
    let report: Awaited<ReturnType<typeof runSmoke>>;
    try {
      report = await runSmoke({
        ref,
        release: stack.release,
        apiUrl,
        services: stack.services,
        ...(anonKey ? { anonKey } : {}),
        ...(serviceKey ? { serviceKey } : {}),
        ...(fn !== undefined ? { functionName: fn } : {}),
        timeoutMs: timeout * 1000,
        sql: (query) =>
          api.request(z.array(z.record(z.string(), z.unknown())), "POST", `/v1/projects/${ref}/database/query`, {
            body: { query },
          }),
        onStep: (e) => {
          if (e.phase === "start") live?.update(`${e.name}: ${e.title}…`);
          else say(smokeLine(e.result));
        },
      });
    } finally {
      live?.stop();
    }
    const { ok, failed, skipped } = report.counts;
    const summary = `${ok} ok, ${failed} failed, ${skipped} skipped`;
    return {
      data: report,
      human: [
        table(
          ["STEP", "RESULT", "TIME", "DETAIL"],
          report.steps.map((r) => [r.name, MARK[r.status], r.status === "skipped" ? "" : `${r.ms} ms`, r.detail]),
        ),
        "",
        `${report.ok ? "Smoke check passed" : "Smoke check FAILED"}: ${summary}.`,
      ].join("\n"),
      ...(report.ok ? {} : { exitCode: EXIT.failed }),
    };
  },
};

export const COMMANDS: Command[] = [
  signup,
  login,
  logout,
  hostsList,
  hostsJoinToken,
  hostsReachability,
  hostFlag("cordon", "Stop placing new projects on a host", "cordoned"),
  hostFlag("uncordon", "Let new projects be placed on a host again (clears cordon and drain)", "uncordoned"),
  hostFlag("drain", "Cordon a host and mark it draining (its projects stay and keep running)", "draining"),
  hostsRemove,
  regionsList,
  releasesList,
  orgsList,
  orgsCreate,
  projectsList,
  projectsShow,
  projectsCreate,
  lifecycle(
    "pause",
    "Pause a project (containers stop, data is kept)",
    "Pause a project: PAUSING, then INACTIVE. With --wait, exit 4 on PAUSE_FAILED.",
  ),
  lifecycle(
    "restore",
    "Restore a paused project",
    "Restore a paused project: RESTORING, then ACTIVE_HEALTHY. With --wait, exit 4 on RESTORE_FAILED.",
  ),
  lifecycle(
    "restart",
    "Restart a project's services",
    "Restart a project: RESTARTING, then ACTIVE_HEALTHY. With --wait, exit 4 on ACTIVE_UNHEALTHY.",
  ),
  projectsApiKeys,
  projectsSql,
  projectsSmoke,
  ...PROJECT_UPGRADE_COMMANDS,
  projectsDelete,
  projectsLogs,
  ...FLEET_COMMANDS,
];
