import { z } from "zod";
import { checkArg, intOption, ProjectRef, requiredString, stringOption } from "./args.js";
import type { ApiClient } from "./client.js";
import type { Command, Output, RunContext } from "./commands.js";
import { CliError, EXIT, usageError } from "./errors.js";
import { table, timestamp } from "./format.js";
import { client } from "./session.js";
import type { LiveLine } from "./wait.js";

/**
 * Upgrades: one project to another release (`projects upgrade`, `upgrade-eligibility`,
 * `upgrade-status`) and every project of an organization or a region (`fleet upgrade`, …).
 * Waiting prints one line per step (per project for a fleet upgrade) on stderr, and a live line
 * on a terminal, like `projects create --wait`.
 */

const REF_ARG = [{ name: "ref", description: "Project ref (20 lowercase letters), from `supamanager projects list`" }];
const RELEASE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function release(ctx: RunContext, flag: string): string {
  const v = requiredString(ctx.input.values, flag, " (see `supamanager releases`)");
  if (!RELEASE.test(v)) throw usageError(`--${flag} must be a release name (see \`supamanager releases\`)`);
  return v;
}

/** What a step of the procedure means, for the progress lines. */
const STEP_TEXT: Record<string, string> = {
  backing_up: "taking a backup first",
  waiting_for_agent: "waiting for the host's agent",
  recording_facts: "recording row counts and extensions",
  stopping: "stopping the old stack",
  copying_data: "copying the data",
  migrating_data: "upgrading the data",
  starting: "starting the new release",
  health_check: "waiting for the new release to be healthy",
  post_check: "checking the data after the upgrade",
  rolling_back: "rolling back to the old release",
  done: "done",
};
const stepText = (step: string) => STEP_TEXT[step] ?? step;

interface PollOptions<T> {
  ctx: RunContext;
  timeoutSeconds: number;
  /** One poll; the answer, or undefined when the control plane is briefly unreachable. */
  read: () => Promise<T>;
  /** Lines to print for this answer (changes since the last one); done → the final answer. */
  observe: (answer: T, elapsed: string, say: (line: string) => void) => { done: boolean; live: string };
  what: string;
}

/** Poll until `observe` says done; network trouble and 5xx are retried until the deadline. */
async function poll<T>(o: PollOptions<T>): Promise<T> {
  const started = Date.now();
  const deadline = started + o.timeoutSeconds * 1000;
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)}s`;
  const live: LiveLine | undefined = o.ctx.live?.();
  const say = (line: string) => (live ? live.print(line) : o.ctx.progress(line));
  let trouble = false;
  try {
    for (;;) {
      let answer: T | undefined;
      try {
        answer = await o.read();
        trouble = false;
      } catch (err) {
        if (!(err instanceof CliError) || err.exitCode !== EXIT.unavailable) throw err;
        if (!trouble) say(`${err.message}; retrying (${elapsed()})`);
        trouble = true;
      }
      if (answer !== undefined) {
        const seen = o.observe(answer, elapsed(), say);
        if (seen.done) return answer;
        live?.update(`${seen.live} · ${elapsed()}`);
      }
      if (Date.now() >= deadline) {
        throw new CliError(
          `timed out after ${o.timeoutSeconds} s waiting for ${o.what}; it goes on in the control plane`,
          EXIT.failed,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(o.ctx.pollIntervalMs, Math.max(0, deadline - Date.now()))));
    }
  } finally {
    live?.stop();
  }
}

// ---- projects upgrade / upgrade-eligibility / upgrade-status ----

const Upgrade = z.looseObject({
  id: z.number(),
  ref: z.string(),
  from_release: z.string(),
  to_release: z.string(),
  status: z.string(),
  step: z.string(),
  failed_step: z.string().nullable(),
  error: z.string().nullable(),
  backup_id: z.number().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
type Upgrade = z.output<typeof Upgrade>;

const UpgradeStatus = z.looseObject({
  ref: z.string(),
  project_status: z.string(),
  status_reason: z.string().nullable(),
  release: z.string(),
  upgrade: Upgrade.nullable(),
});
type UpgradeStatus = z.output<typeof UpgradeStatus>;

function upgradeData(s: UpgradeStatus) {
  return { ...s.upgrade, project_status: s.project_status, status_reason: s.status_reason, release: s.release };
}

/** The human summary of an upgrade that has ended (or is running), and its exit code. */
function upgradeOutcome(s: UpgradeStatus): Output {
  const u = s.upgrade as Upgrade;
  const data = upgradeData(s);
  const backup = u.backup_id !== null ? `backup ${u.backup_id}` : "no backup";
  switch (u.status) {
    case "COMPLETED":
      return { data, human: `Project ${u.ref} upgraded from ${u.from_release} to ${u.to_release} (${backup}).` };
    case "ROLLED_BACK":
      return {
        data,
        human:
          `Upgrade ${u.id} of ${u.ref} to ${u.to_release} was ROLLED BACK${u.failed_step ? ` at ${u.failed_step}` : ""}: ${u.error ?? "no reason given"}\n` +
          `The project runs ${s.release} again (${s.project_status}). Fix the cause and run the upgrade again.`,
        exitCode: EXIT.failed,
      };
    case "FAILED":
      return {
        data,
        human:
          `Upgrade ${u.id} of ${u.ref} to ${u.to_release} FAILED: ${u.error ?? "no reason given"}\n` +
          `${s.status_reason ?? ""}`.trim(),
        exitCode: EXIT.failed,
      };
    default:
      return {
        data,
        human: `Upgrade ${u.id} of ${u.ref}: ${u.from_release} → ${u.to_release}, ${u.status}, ${stepText(u.step)} (since ${timestamp(u.created_at)}).`,
      };
  }
}

const WAIT = {
  wait: { type: "boolean", description: "Follow the upgrade step by step until it ends (exit 4 unless it completed)" },
  timeout: {
    type: "string",
    placeholder: "seconds",
    description: "Give up waiting after this long (default 3600); the upgrade goes on; exit 4",
  },
} as const;

async function followUpgrade(ctx: RunContext, api: ApiClient, ref: string, id: number): Promise<Output> {
  const timeout = intOption(ctx.input.values, "timeout", 1, 86_400) ?? 3600;
  let lastStep: string | undefined;
  const final = await poll<UpgradeStatus>({
    ctx,
    timeoutSeconds: timeout,
    what: `upgrade ${id} of ${ref}`,
    read: () => api.request(UpgradeStatus, "GET", `/platform/projects/${ref}/upgrade/status`, { query: { id } }),
    observe: (s, elapsed, say) => {
      const u = s.upgrade as Upgrade;
      if (u.step !== lastStep) {
        lastStep = u.step;
        if (u.status === "RUNNING") say(`${ref}: ${u.step} — ${stepText(u.step)} (${elapsed})`);
      }
      if (u.status !== "RUNNING") say(`${ref}: ${u.status} (${elapsed})`);
      return { done: u.status !== "RUNNING", live: `${ref}: ${stepText(u.step)}` };
    },
  });
  return upgradeOutcome(final);
}

const projectsUpgrade: Command = {
  path: ["projects", "upgrade"],
  summary: "Upgrade a project to another release (a backup first, automatic rollback)",
  description:
    "Upgrade a project to another release: a backup first (refused when its organization has no backup\n" +
    "storage, unless --allow-without-backup), the stack stopped, the data upgraded when the PostgreSQL major\n" +
    "changes, the new release started and checked; any failure rolls the project back to its old release\n" +
    "and data. See `supamanager projects upgrade-eligibility <ref>` for the releases it may move to.\n" +
    "With --wait, prints each step and exits 4 when the upgrade was rolled back or failed.",
  args: REF_ARG,
  options: {
    to: { type: "string", placeholder: "release", description: "The release to upgrade to" },
    "allow-without-backup": {
      type: "boolean",
      description: "Start even though the organization has no backup storage (no backup is taken)",
    },
    ...WAIT,
  },
  examples: ["supamanager projects upgrade abcdefghijklmnopqrst --to supabase-v0.8.2 --wait"],
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const to = release(ctx, "to");
    if (ctx.input.values.wait !== true && ctx.input.values.timeout !== undefined) {
      throw usageError("--timeout only makes sense with --wait");
    }
    const api = client(ctx);
    const u = await api.request(Upgrade, "POST", `/platform/projects/${ref}/upgrade`, {
      body: { target_release: to, allow_without_backup: ctx.input.values["allow-without-backup"] === true },
    });
    ctx.progress(
      `Upgrade ${u.id} of ${ref} started: ${u.from_release} → ${u.to_release}${u.backup_id !== null ? ` (backup ${u.backup_id} first)` : " (no backup)"}`,
    );
    if (ctx.input.values.wait === true) return followUpgrade(ctx, api, ref, u.id);
    return {
      data: u,
      human: `Upgrade ${u.id} of ${ref} is running (${stepText(u.step)}). Follow it: supamanager projects upgrade-status ${ref} --wait`,
    };
  },
};

const projectsUpgradeStatus: Command = {
  path: ["projects", "upgrade-status"],
  summary: "Show a project's latest upgrade (or one by --id); --wait follows it",
  args: REF_ARG,
  options: {
    id: { type: "string", placeholder: "id", description: "An upgrade id (default: the latest)" },
    ...WAIT,
  },
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const id = intOption(ctx.input.values, "id", 1, 999_999_999);
    const api = client(ctx);
    const s = await api.request(UpgradeStatus, "GET", `/platform/projects/${ref}/upgrade/status`, {
      query: { id },
    });
    if (!s.upgrade) {
      return { data: { ...s }, human: `Project ${ref} has never been upgraded (release ${s.release}).` };
    }
    if (ctx.input.values.wait === true && s.upgrade.status === "RUNNING") {
      return followUpgrade(ctx, api, ref, s.upgrade.id);
    }
    return upgradeOutcome(s);
  },
};

const Eligibility = z.looseObject({
  ref: z.string(),
  current_release: z.string(),
  current_postgres_major: z.number().nullable(),
  eligible: z.boolean(),
  releases: z.array(
    z.looseObject({
      release: z.string(),
      postgres_major: z.number().nullable(),
      major_upgrade: z.boolean(),
      parts: z.array(z.string()),
      eligible: z.boolean(),
      reason_code: z.string().nullable(),
      reason: z.string().nullable(),
    }),
  ),
});

const projectsUpgradeEligibility: Command = {
  path: ["projects", "upgrade-eligibility"],
  summary: "List the releases a project may be upgraded to, and why not the others",
  args: REF_ARG,
  run: async (ctx) => {
    const ref = checkArg(ProjectRef, ctx.input.args.ref as string, "ref");
    const e = await client(ctx).request(Eligibility, "GET", `/platform/projects/${ref}/upgrade/eligibility`);
    const rows = e.releases.map((r) => [
      r.release,
      r.postgres_major,
      r.eligible ? "yes" : "no",
      r.eligible
        ? r.major_upgrade
          ? "PostgreSQL major upgrade (the data is upgraded)"
          : "same PostgreSQL major"
        : r.reason,
    ]);
    const head = `Project ${e.ref} runs ${e.current_release} (PostgreSQL ${e.current_postgres_major ?? "?"}).`;
    return {
      data: e,
      human: `${head}\n\n${table(["RELEASE", "POSTGRES", "ELIGIBLE", "NOTE"], rows)}`,
    };
  },
};

export const PROJECT_UPGRADE_COMMANDS: Command[] = [projectsUpgrade, projectsUpgradeStatus, projectsUpgradeEligibility];

// ---- fleet upgrade / upgrades / upgrade-status / upgrade-stop ----

const RolloutProject = z.looseObject({
  ref: z.string(),
  org_slug: z.string().nullable(),
  region: z.string(),
  status: z.string(),
  canary: z.boolean(),
  upgrade_id: z.number().nullable(),
  error: z.string().nullable(),
});
const Rollout = z.looseObject({
  id: z.number(),
  from_release: z.string(),
  to_release: z.string(),
  org_slug: z.string().nullable(),
  region: z.string().nullable(),
  parallel: z.number(),
  status: z.string(),
  stop_reason: z.string().nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
  counts: z.record(z.string(), z.number()),
  projects: z.array(RolloutProject),
});
type Rollout = z.output<typeof Rollout>;

const RESULT: Record<string, string> = {
  PENDING: "not started yet",
  STARTING: "starting",
  RUNNING: "upgrading",
  COMPLETED: "upgraded",
  ROLLED_BACK: "rolled back",
  FAILED: "FAILED",
  SKIPPED: "not started",
};

function scopeOf(r: Rollout): string {
  return [r.org_slug && `org ${r.org_slug}`, r.region && `region ${r.region}`].filter(Boolean).join(", ");
}

function rolloutSummary(r: Rollout): string {
  const c = (k: string) => r.counts[k] ?? 0;
  const parts = [
    `${c("COMPLETED")} upgraded`,
    `${c("ROLLED_BACK")} rolled back`,
    `${c("FAILED")} failed`,
    `${c("SKIPPED")} not started`,
  ];
  const open = c("PENDING") + c("STARTING") + c("RUNNING");
  if (open > 0) parts.push(`${open} to go`);
  return parts.join(", ");
}

/** The report: one row per project, then what happened overall. */
function rolloutReport(r: Rollout): Output {
  const rows = r.projects.map((p) => [
    p.ref,
    p.org_slug,
    p.region,
    `${RESULT[p.status] ?? p.status}${p.canary ? " (canary)" : ""}`,
    p.upgrade_id,
    p.error,
  ]);
  const head = `Fleet upgrade ${r.id}: ${r.from_release} → ${r.to_release} (${scopeOf(r)}, ${r.parallel} at a time): ${r.status}`;
  const why = r.stop_reason ? `\nStopped: ${r.stop_reason}.` : "";
  return {
    data: r,
    human: `${head}\n\n${table(["REF", "ORG", "REGION", "RESULT", "UPGRADE", "NOTE"], rows)}\n\n${rolloutSummary(r)}.${why}`,
    ...(r.status === "STOPPED" || (r.counts.FAILED ?? 0) > 0 || (r.counts.ROLLED_BACK ?? 0) > 0
      ? { exitCode: EXIT.failed }
      : {}),
  };
}

async function followRollout(ctx: RunContext, api: ApiClient, first: Rollout): Promise<Output> {
  const timeout = intOption(ctx.input.values, "timeout", 1, 7 * 86_400) ?? 86_400;
  const seen = new Map<string, string>();
  let lastStatus: string | undefined;
  const final = await poll<Rollout>({
    ctx,
    timeoutSeconds: timeout,
    what: `fleet upgrade ${first.id}`,
    read: () => api.request(Rollout, "GET", `/platform/fleet/upgrades/${first.id}`),
    observe: (r, elapsed, say) => {
      for (const p of r.projects) {
        if (p.status === "PENDING" || seen.get(p.ref) === p.status) continue;
        seen.set(p.ref, p.status);
        const note = p.error ? `: ${p.error}` : "";
        say(`${p.ref}: ${RESULT[p.status] ?? p.status}${p.canary ? " (canary)" : ""}${note} (${elapsed})`);
      }
      if (r.status !== lastStatus) {
        lastStatus = r.status;
        if (r.status !== "RUNNING") {
          say(`fleet upgrade ${r.id}: ${r.status}${r.stop_reason ? ` — ${r.stop_reason}` : ""} (${elapsed})`);
        }
      }
      const done = r.status === "COMPLETED" || r.status === "STOPPED";
      return { done, live: `fleet upgrade ${r.id}: ${rolloutSummary(r)}` };
    },
  });
  return rolloutReport(final);
}

const fleetUpgrade: Command = {
  path: ["fleet", "upgrade"],
  summary: "Upgrade every project on a release, of an organization and/or a region",
  description:
    "Upgrade every project of an organization and/or a region that runs --release to --to, with the same\n" +
    "procedure as `projects upgrade` (a backup first, automatic rollback): one project first (the canary),\n" +
    "then --parallel at a time once it succeeded; the first upgrade that is rolled back or fails stops the\n" +
    "rollout (running upgrades finish, nothing new starts). It runs in the control plane and survives a\n" +
    "restart; this command follows it and prints the report (--detach returns at once). Exit 4 when it\n" +
    "stopped. Projects that cannot be upgraded when their turn comes (paused, too small) are not started.",
  options: {
    release: { type: "string", placeholder: "release", description: "Upgrade the projects on this release" },
    to: { type: "string", placeholder: "release", description: "The release to upgrade them to" },
    org: { type: "string", placeholder: "slug", description: "Only this organization's projects" },
    region: { type: "string", placeholder: "region", description: "Only the projects of this region" },
    parallel: { type: "string", placeholder: "n", description: "Upgrades at once after the canary (1-50, default 1)" },
    canary: { type: "string", placeholder: "ref", description: "The project to upgrade first (default: the oldest)" },
    "allow-without-backup": {
      type: "boolean",
      description: "Upgrade projects whose organization has no backup storage (no backup is taken)",
    },
    detach: { type: "boolean", description: "Start it and return (follow with `supamanager fleet upgrade-status`)" },
    timeout: {
      type: "string",
      placeholder: "seconds",
      description: "Stop following after this long (default 86400); the rollout goes on; exit 4",
    },
  },
  examples: [
    "supamanager fleet upgrade --release supabase-2026.02 --to supabase-v0.8.2 --org acme --parallel 3",
    "supamanager fleet upgrade --release local --to local-17 --region eu-1 --detach --json",
  ],
  run: async (ctx) => {
    const v = ctx.input.values;
    const from = release(ctx, "release");
    const to = release(ctx, "to");
    const org = stringOption(v, "org");
    const region = stringOption(v, "region");
    if (org === undefined && region === undefined) throw usageError("give --org, --region, or both");
    const parallel = intOption(v, "parallel", 1, 50) ?? 1;
    const canary = stringOption(v, "canary");
    if (canary !== undefined) checkArg(ProjectRef, canary, "--canary");
    if (v.detach === true && v.timeout !== undefined) throw usageError("--timeout only makes sense without --detach");
    const api = client(ctx);
    const r = await api.request(Rollout, "POST", "/platform/fleet/upgrades", {
      body: {
        from_release: from,
        to_release: to,
        ...(org !== undefined ? { org_slug: org } : {}),
        ...(region !== undefined ? { region } : {}),
        parallel,
        allow_without_backup: v["allow-without-backup"] === true,
        ...(canary !== undefined ? { canary_ref: canary } : {}),
      },
    });
    ctx.progress(
      `Fleet upgrade ${r.id} started: ${r.projects.length} project${r.projects.length === 1 ? "" : "s"} on ${from} → ${to} (${scopeOf(r)}), the canary first, then ${parallel} at a time`,
    );
    if (v.detach === true) {
      return {
        data: r,
        human: `Fleet upgrade ${r.id} is running. Follow it: supamanager fleet upgrade-status ${r.id} --wait`,
      };
    }
    return followRollout(ctx, api, r);
  },
};

const ROLLOUT_ARG = [{ name: "id", description: "Fleet upgrade id (from `supamanager fleet upgrades`)" }];
const RolloutIdArg = z.string().regex(/^[0-9]{1,9}$/, "a fleet upgrade id is a number");

const fleetUpgradeStatus: Command = {
  path: ["fleet", "upgrade-status"],
  summary: "Show a fleet upgrade's report; --wait follows it to the end",
  args: ROLLOUT_ARG,
  options: {
    wait: { type: "boolean", description: "Follow it until it ends (exit 4 when it stopped)" },
    timeout: { type: "string", placeholder: "seconds", description: "Stop following after this long (default 86400)" },
  },
  run: async (ctx) => {
    const id = checkArg(RolloutIdArg, ctx.input.args.id as string, "id");
    const api = client(ctx);
    const r = await api.request(Rollout, "GET", `/platform/fleet/upgrades/${id}`);
    if (ctx.input.values.wait === true && (r.status === "RUNNING" || r.status === "STOPPING")) {
      return followRollout(ctx, api, r);
    }
    return rolloutReport(r);
  },
};

const fleetUpgrades: Command = {
  path: ["fleet", "upgrades"],
  summary: "List recent fleet upgrades",
  run: async (ctx) => {
    const rows = await client(ctx).request(z.array(Rollout), "GET", "/platform/fleet/upgrades");
    return {
      data: rows,
      human: rows.length
        ? table(
            ["ID", "FROM", "TO", "SCOPE", "STATUS", "RESULT", "STARTED"],
            rows.map((r) => [
              r.id,
              r.from_release,
              r.to_release,
              scopeOf(r),
              r.status,
              rolloutSummary(r),
              timestamp(r.created_at),
            ]),
          )
        : "No fleet upgrades.",
    };
  },
};

const fleetUpgradeStop: Command = {
  path: ["fleet", "upgrade-stop"],
  summary: "Stop a fleet upgrade: nothing new starts, running upgrades finish",
  args: ROLLOUT_ARG,
  run: async (ctx) => {
    const id = checkArg(RolloutIdArg, ctx.input.args.id as string, "id");
    const r = await client(ctx).request(Rollout, "POST", `/platform/fleet/upgrades/${id}/stop`);
    return { data: r, human: `Fleet upgrade ${r.id}: ${r.status} (${rolloutSummary(r)}).` };
  },
};

export const FLEET_COMMANDS: Command[] = [fleetUpgrade, fleetUpgradeStatus, fleetUpgrades, fleetUpgradeStop];
