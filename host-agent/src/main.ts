import os from "node:os";
import { resolve } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { z } from "zod";
import { Agent } from "./agent.js";
import { BindAddress, CredentialsError, credentialsPath, readCredentials } from "./credentials.js";
import {
  DEFAULT_INGRESS_AGENT_PORT,
  DEFAULT_INGRESS_IMAGE,
  DEFAULT_INGRESS_PORT,
  type IngressSettings,
} from "./ingress/ingress.js";
import { JoinError, join } from "./join.js";
import { createLogger, type Logger } from "./log.js";
import { DockerRuntime } from "./runtime/docker.js";
import type { ContainerRuntime } from "./runtime/types.js";
import { BASE_VERSION_ENV, EXIT_RESTART, LAUNCHED_ENV, superviseVersion } from "./update/launcher.js";
import { readUpdateState } from "./update/state.js";
import { SelfUpdater } from "./update/updater.js";
import { AGENT_VERSION } from "./version.js";

const USAGE = `supamanager-agent ${AGENT_VERSION} — runs SupaManager projects on this Docker host

Usage:
  supamanager-agent join --url <control plane> --token <join token> --data-dir <dir> [--name <hostname>] [--bind-address 127.0.0.1] [--reachability direct|ingress|tunnel] [--force]
  (the token may come from $SUPAMANAGER_JOIN_TOKEN instead of --token)
  supamanager-agent run --data-dir <dir>
  supamanager-agent <command> --help

Exit codes: 0 ok, 1 usage or local error, 2 the control plane refused, 3 the control plane could not be reached.`;

const JOIN_USAGE = `supamanager-agent join — enroll this host with a join token

  --url <url>             the control plane, e.g. https://fleet.example.com
  --token <token>         a join token from POST /platform/fleet/join-tokens (or $SUPAMANAGER_JOIN_TOKEN,
                          which keeps it out of the process list and the shell history)
  --data-dir <dir>        where the agent keeps its credential and projects (created 0700)
  --name <hostname>       how the host is listed (default: this machine's hostname)
  --bind-address <ip>     interface project ports are published on (default 127.0.0.1)
  --reachability <mode>   how apps reach this host's projects: direct (default), ingress, or tunnel
                          (a host behind NAT: the control plane relays its projects' traffic)
  --force                 replace an existing credential in the data directory

Writes <data-dir>/credentials.json (mode 0600). Exit codes: 2 refused (message from the control plane), 3 unreachable.`;

const RUN_USAGE = `supamanager-agent run — connect to the control plane and keep this host's projects converged

  --data-dir <dir>        the directory given to \`join\`
  --log-level <level>     debug | info | warn | error (default info)

Host ingress (hosts in \`ingress\` mode: one proxy serves https://<ref>.<projects domain>, ADR 0036).
Each option may also come from the environment variable named after it, e.g. --ingress-cert from
SUPAMANAGER_AGENT_INGRESS_CERT. Without a certificate or ACME, the agent runs no proxy.
  --ingress-cert <file>        certificate chain (PEM) for *.<projects domain>; read again on each change
  --ingress-key <file>         its private key (PEM); copied into <data-dir>/ingress (0600), never logged
  --ingress-acme-email <addr>  instead of files: ACME (per-name certificates; needs ports 80/443 reachable)
  --ingress-acme-ca <url>      the ACME directory (default Let's Encrypt)
  --ingress-port <port>        TLS port on the host (default ${DEFAULT_INGRESS_PORT})
  --ingress-http-port <port>   ACME only: HTTP port for HTTP-01 and redirects (default 80)
  --ingress-address <ip>       interface the TLS port is published on (default: the bind address)
  --ingress-agent-port <port>  loopback port the agent reaches gateways through (default ${DEFAULT_INGRESS_AGENT_PORT})
  --ingress-image <image>      the proxy's image (default ${DEFAULT_INGRESS_IMAGE}; supamanager/ingress:local
                               is built by \`npm run images:test\` and never pulled)

Runs until SIGTERM or SIGINT; then lets a running Compose command finish and exits 0.
When the control plane wants another agent version, installs it under <data-dir>/agent/ and runs it
(rolling back if it does not reconnect in time); see docs/agent.md, "Self-update".`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  fetch?: typeof fetch;
  /** Environment variables the CLI reads (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** How `run` builds its runtime; the real one unless a test supplies another. */
  createRuntime?: (logger: Logger) => Promise<ContainerRuntime>;
  /** Resolves when `run` should stop (default: SIGTERM or SIGINT). */
  stopSignal?: Promise<string>;
  /** The self-update's downloads (default: global fetch). */
  updateFetch?: typeof fetch;
}

const defaultIo: CliIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

class UsageError extends Error {}

function parse<T extends z.ZodType>(
  args: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
  schema: T,
): z.infer<T> | "help" {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args, options: { ...options, help: { type: "boolean", short: "h" } }, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return "help";
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = issue?.path[0];
    throw new UsageError(
      name ? `--${String(name).replace(/_/g, "-")}: ${issue?.message}` : (issue?.message ?? "bad arguments"),
    );
  }
  return parsed.data;
}

const JoinArgs = z.object({
  url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
  token: z.string({ error: "is required" }).min(1, "is required"),
  "data-dir": z.string({ error: "is required" }).min(1, "is required"),
  name: z.string().min(1).max(255).optional(),
  "bind-address": BindAddress.default("127.0.0.1"),
  reachability: z.enum(["direct", "ingress", "tunnel"], { error: "must be direct, ingress or tunnel" }).optional(),
  force: z.boolean().default(false),
});

const Port = z.coerce.number({ error: "must be a port number" }).int().min(1).max(65535);

const RunArgs = z.object({
  "data-dir": z.string({ error: "is required" }).min(1, "is required"),
  "log-level": z.enum(["debug", "info", "warn", "error"]).default("info"),
  "ingress-cert": z.string().min(1).optional(),
  "ingress-key": z.string().min(1).optional(),
  "ingress-acme-email": z.email({ error: "must be an email address" }).optional(),
  "ingress-acme-ca": z.url({ protocol: /^https$/, error: "must be an https URL" }).optional(),
  "ingress-port": Port.default(DEFAULT_INGRESS_PORT),
  "ingress-http-port": Port.default(80),
  "ingress-address": BindAddress.optional(),
  "ingress-agent-port": Port.default(DEFAULT_INGRESS_AGENT_PORT),
  "ingress-image": z
    .string()
    .regex(/^[a-z0-9][a-z0-9._/:@-]{0,254}$/, "must be an image reference such as caddy:2.6")
    .default(DEFAULT_INGRESS_IMAGE),
});

const INGRESS_FLAGS = [
  "ingress-cert",
  "ingress-key",
  "ingress-acme-email",
  "ingress-acme-ca",
  "ingress-port",
  "ingress-http-port",
  "ingress-address",
  "ingress-agent-port",
  "ingress-image",
] as const;

/** `--ingress-cert` ← SUPAMANAGER_AGENT_INGRESS_CERT, unless given on the command line. */
function withIngressEnv(args: string[], env: NodeJS.ProcessEnv): string[] {
  const out = [...args];
  for (const flag of INGRESS_FLAGS) {
    const value = env[`SUPAMANAGER_AGENT_${flag.toUpperCase().replace(/-/g, "_")}`];
    if (value && !args.some((x) => x === `--${flag}` || x.startsWith(`--${flag}=`))) out.push(`--${flag}`, value);
  }
  return out;
}

/** The ingress settings from `run`'s arguments; undefined when neither certificate nor ACME is set. */
function ingressSettings(a: z.infer<typeof RunArgs>, bindAddress: string): IngressSettings | undefined {
  if ((a["ingress-cert"] === undefined) !== (a["ingress-key"] === undefined)) {
    throw new UsageError("--ingress-cert and --ingress-key go together");
  }
  const files = a["ingress-cert"] !== undefined && a["ingress-key"] !== undefined;
  if (!files && a["ingress-acme-email"] === undefined) return undefined;
  if (a["ingress-agent-port"] === a["ingress-port"]) {
    throw new UsageError("--ingress-agent-port must differ from --ingress-port");
  }
  return {
    image: a["ingress-image"],
    address: a["ingress-address"] ?? bindAddress,
    port: a["ingress-port"],
    agentPort: a["ingress-agent-port"],
    ...(files ? { certFile: resolve(a["ingress-cert"] as string), keyFile: resolve(a["ingress-key"] as string) } : {}),
    ...(!files && a["ingress-acme-email"] !== undefined
      ? { acme: { email: a["ingress-acme-email"], ca: a["ingress-acme-ca"], httpPort: a["ingress-http-port"] } }
      : {}),
  };
}

/** The CLI, as a function returning the exit code (tests call it in-process). */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "join":
        return await joinCommand(rest, io);
      case "run":
        return await runCommand(rest, io);
      case "--version":
        io.out(AGENT_VERSION);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.out(USAGE);
        return command === undefined ? 1 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`supamanager-agent: ${err.message}\n\n${USAGE}`);
      return 1;
    }
    if (err instanceof JoinError) {
      io.err(`supamanager-agent: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof CredentialsError) {
      io.err(`supamanager-agent: ${err.message}`);
      return 1;
    }
    io.err(`supamanager-agent: ${(err as Error).message ?? String(err)}`);
    return 1;
  }
}

async function joinCommand(args: string[], io: CliIo): Promise<number> {
  const envToken = (io.env ?? process.env).SUPAMANAGER_JOIN_TOKEN;
  const withToken =
    envToken && !args.some((x) => x === "--token" || x.startsWith("--token=")) ? [...args, "--token", envToken] : args;
  const a = parse(
    withToken,
    {
      url: { type: "string" },
      token: { type: "string" },
      "data-dir": { type: "string" },
      name: { type: "string" },
      "bind-address": { type: "string" },
      reachability: { type: "string" },
      force: { type: "boolean" },
    },
    JoinArgs,
  );
  if (a === "help") {
    io.out(JOIN_USAGE);
    return 0;
  }
  if (!a.force) {
    const existing = await readCredentials(a["data-dir"]).catch(() => null);
    if (existing) {
      throw new UsageError(
        `${credentialsPath(a["data-dir"])} already holds host ${existing.creds.host_id}; pass --force to replace it`,
      );
    }
  }
  const { creds, path } = await join({
    url: a.url,
    token: a.token,
    hostname: a.name ?? os.hostname(),
    bindAddress: a["bind-address"],
    ...(a.reachability !== undefined ? { reachability: a.reachability } : {}),
    dataDir: a["data-dir"],
    fetch: io.fetch,
  });
  const log = createLogger({ write: io.out });
  log.info("joined", { host_id: creds.host_id, region: creds.region, hostname: creds.hostname, file: path });
  return 0;
}

function signals(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      // A second signal while stopping means "now".
      process.once("SIGTERM", () => process.exit(143));
      process.once("SIGINT", () => process.exit(130));
      resolve(sig);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

/**
 * Resolves when the launcher that started this process is gone (SIGKILLed, crashed): Node cannot
 * ask the kernel to signal us then, and a supervisor restarting the launcher starts another agent,
 * so an orphaned one stops instead of fighting it for the host's connection.
 */
function parentGone(everyMs = 1000): Promise<string> {
  const parent = process.ppid;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (process.ppid !== parent) {
        clearInterval(timer);
        resolve("launcher gone");
      }
    }, everyMs);
    timer.unref();
  });
}

async function runCommand(args: string[], io: CliIo): Promise<number> {
  const a = parse(
    withIngressEnv(args, io.env ?? process.env),
    {
      "data-dir": { type: "string" },
      "log-level": { type: "string" },
      ...Object.fromEntries(INGRESS_FLAGS.map((f) => [f, { type: "string" as const }])),
    },
    RunArgs,
  );
  if (a === "help") {
    io.out(RUN_USAGE);
    return 0;
  }
  const env = io.env ?? process.env;
  // Started by the launcher of the base install: run here, and exit EXIT_RESTART to switch versions.
  const launched = env[LAUNCHED_ENV] === "1";
  const stopSignal = io.stopSignal ?? (launched ? Promise.race([signals(), parentGone()]) : signals());
  const log = createLogger({ level: a["log-level"], write: io.out });
  const { creds, looseMode } = await readCredentials(a["data-dir"]);
  if (looseMode)
    log.warn("credentials file is readable by others; chmod 600 it", { file: credentialsPath(a["data-dir"]) });
  const baseVersion = launched ? (env[BASE_VERSION_ENV] ?? "") : AGENT_VERSION;
  const ingress = ingressSettings(a, creds.bind_address);
  let runtime: ContainerRuntime | null = null;
  for (;;) {
    if (!launched) {
      // The base install (what systemd or `npm start` runs) is the launcher: it runs the version
      // the update state names, or itself when none is installed (ADR 0040).
      const { state, damaged } = await readUpdateState(a["data-dir"]);
      if (damaged)
        log.warn("the agent's update state is damaged; running the base install", { version: AGENT_VERSION });
      if (state.current) {
        const outcome = await superviseVersion({
          dataDir: a["data-dir"],
          state,
          // The same arguments (ingress options included) for the version it runs.
          args: ["run", ...args],
          logger: log,
          stopSignal,
          baseVersion: AGENT_VERSION,
          env,
        });
        if (outcome.kind === "stopped") return outcome.code;
        continue;
      }
    }
    runtime ??= await (io.createRuntime ?? ((l: Logger) => DockerRuntime.create({ logger: l })))(log);
    let restart: (reason: string) => void = () => {};
    const restarting = new Promise<string>((resolve) => {
      restart = resolve;
    });
    const updater = new SelfUpdater({
      dataDir: a["data-dir"],
      logger: log.child({ component: "update" }),
      version: AGENT_VERSION,
      baseVersion,
      runningJobs: () => agent.runningJobs,
      restart: (reason) => restart(reason),
      reportFailure: () => agent.reconnect("reporting a failed agent update"),
      ...(io.updateFetch ? { fetch: io.updateFetch } : {}),
    });
    const agent: Agent = new Agent({
      dataDir: a["data-dir"],
      url: creds.url,
      credential: creds.credential,
      hostname: creds.hostname,
      bindAddress: creds.bind_address,
      ingress,
      runtime,
      logger: log.child({ host_id: creds.host_id }),
      selfUpdate: updater,
    });
    await agent.start();
    const reason = await Promise.race([
      stopSignal.then((sig) => ({ stop: sig })),
      restarting.then((why) => ({ restart: why })),
    ]);
    updater.stop();
    if ("stop" in reason) {
      log.info("stopping", { signal: reason.stop });
      await agent.stop();
      return 0;
    }
    log.info("stopping to switch agent versions", { reason: reason.restart });
    await agent.stop();
    if (launched) return EXIT_RESTART;
  }
}
