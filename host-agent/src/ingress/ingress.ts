import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { INGRESS_NETWORK, type IngressStatus } from "@supamanager/shared";
import type { Logger } from "../log.js";
import { writeFileAtomic } from "../reconcile/store.js";
import { composeEnv } from "../runtime/docker.js";
import { run } from "../runtime/exec.js";
import type { ComposeProject, ContainerRuntime } from "../runtime/types.js";
import {
  CONTAINER_CONFIG_FILE,
  caddyConfig,
  INGRESS_PROJECT,
  type IngressRoute,
  type IngressTls,
  ingressCompose,
} from "./config.js";

/** The Debian-packaged Caddy's upstream image; hosts that pull from Docker Hub get it by default. */
export const DEFAULT_INGRESS_IMAGE = "caddy:2.6";
export const DEFAULT_INGRESS_PORT = 443;
export const DEFAULT_INGRESS_AGENT_PORT = 54399;

export interface IngressSettings {
  image: string;
  /** Host interface the TLS port is published on (default: the agent's bind address). */
  address: string;
  port: number;
  /** Loopback port the agent reaches gateways on (the proxy's `agent` listener). */
  agentPort: number;
  /** Operator-provided certificate (full chain) and key, PEM; read on each sync, never logged. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** ACME instead of files (documented, untested here: no CA is reachable from our machines). */
  acme?: { email: string; ca?: string | undefined; httpPort: number } | undefined;
}

/** Runs commands against Docker (the CLI, like Compose); tests may replace it. */
export type DockerCli = (args: readonly string[]) => Promise<string>;

export interface IngressOptions {
  dataDir: string;
  /** Absent: the agent was given no certificate (nor ACME), so it runs no proxy. */
  settings?: IngressSettings | undefined;
  runtime: Pick<ContainerRuntime, "composeUp" | "composeDown">;
  /** The routes the host's projects want now (running projects whose stack has `ingress`). */
  routes: () => Promise<IngressRoute[]>;
  logger: Logger;
  docker?: DockerCli;
}

/**
 * The host's one reverse proxy (ADR 0036): Caddy in its own Compose project on INGRESS_NETWORK,
 * which each served project's gateway joins. `sync()` makes the proxy match the projects: it
 * writes Caddy's config and reloads it through Caddy's admin API (inside the container), which
 * swaps the routes without closing connections that are open; it starts the proxy when the first
 * project needs it and removes it when none does. Syncs run one at a time; calls made while one
 * runs are folded into one more run.
 */
export class Ingress {
  private readonly dir: string;
  private readonly docker: DockerCli;
  private current: IngressStatus = { state: "off", projects: 0 };
  private running: Promise<void> | null = null;
  private again = false;
  private loadedDigest: string | null = null;
  /** Whether the proxy's container exists (null: not known yet, after the agent started). */
  private up: boolean | null = null;

  constructor(private readonly opts: IngressOptions) {
    this.dir = join(resolve(opts.dataDir), "ingress");
    this.docker = opts.docker ?? ((args) => run("docker", args, { env: composeEnv(), timeoutMs: 60_000 }));
  }

  /** What hello and heartbeats report. */
  status(): IngressStatus {
    return { ...this.current };
  }

  /** The base URL the agent reaches a project's gateway at through the proxy's loopback listener. */
  endpoint(ref: string): string | null {
    const origin = this.origin;
    return origin === null ? null : `${origin}/${ref}`;
  }

  /** The origin of that listener (the rpc forwarder accepts it besides the bind address). */
  get origin(): string | null {
    return this.opts.settings ? `http://127.0.0.1:${this.opts.settings.agentPort}` : null;
  }

  /**
   * Before a project that the ingress serves starts: the shared network must exist (its compose
   * file refers to it as external) and the proxy must be able to serve it. Throws a message for
   * the operator otherwise (the apply fails with it).
   */
  async prepare(): Promise<void> {
    this.configured(); // throws when the agent has neither certificate files nor ACME
    await this.ensureNetwork();
  }

  /** Bring the proxy in line with the projects; resolves when this call's state is applied. */
  sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const loop = async () => {
      do {
        this.again = false;
        await this.syncOnce();
      } while (this.again);
    };
    this.running = loop().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private configured(): { settings: IngressSettings; tls: IngressTls } {
    const s = this.opts.settings;
    if (s?.certFile && s.keyFile) return { settings: s, tls: { kind: "files" } };
    if (s?.acme) {
      return { settings: s, tls: { kind: "acme", email: s.acme.email, ...(s.acme.ca ? { ca: s.acme.ca } : {}) } };
    }
    throw new Error(
      "this host serves its projects through its ingress (reachability ingress), but the agent has no certificate: " +
        "start it with --ingress-cert <fullchain.pem> --ingress-key <key.pem> (a wildcard for the projects domain) " +
        "or --ingress-acme-email <address>, or set the host's reachability to direct",
    );
  }

  private async syncOnce(): Promise<void> {
    const log = this.opts.logger;
    // An agent without ingress settings never started a proxy: nothing to follow.
    if (!this.opts.settings) return;
    let routes: IngressRoute[] = [];
    try {
      routes = await this.opts.routes();
      if (routes.length === 0) {
        // After a restart the agent does not know whether a proxy is left over: look once.
        if (this.up === null) this.up = await this.containerExists();
        if (this.up) {
          await this.opts.runtime.composeDown(await this.project());
          this.up = false;
          this.loadedDigest = null;
          log.info("ingress: no project served here any more; proxy removed");
        }
        this.current = { state: "off", projects: 0 };
        return;
      }
      const { settings, tls } = this.configured();
      await this.ensureNetwork();
      const digest = await this.writeFiles(settings, routes, tls);
      const project = await this.project();
      // `up` is a no-op when the proxy already runs with this compose file.
      await this.opts.runtime.composeUp(project);
      if (this.loadedDigest !== digest) {
        await this.reload();
        this.loadedDigest = digest;
        log.info("ingress: routes loaded", { projects: routes.length });
      }
      this.up = true;
      this.current = { state: "running", projects: routes.length, port: settings.port };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.current = { state: "error", projects: routes.length, message: message.slice(0, 1000) };
      log.error("ingress: sync failed", { error: message });
      throw err;
    }
  }

  /** Caddy's `reload` posts the file to its admin API (loopback inside the container). */
  private async reload(): Promise<void> {
    // Right after `up` the admin API may not listen yet: a few tries, then the error.
    let last: unknown;
    for (let i = 0; i < 20; i++) {
      try {
        await this.docker(["exec", INGRESS_PROJECT, "caddy", "reload", "--config", CONTAINER_CONFIG_FILE, "--force"]);
        return;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 250 * Math.min(i + 1, 4)));
      }
    }
    throw new Error(`the ingress did not load its config: ${last instanceof Error ? last.message : String(last)}`);
  }

  private async containerExists(): Promise<boolean> {
    try {
      await this.docker(["container", "inspect", "--format", "{{.Id}}", INGRESS_PROJECT]);
      return true;
    } catch {
      return false;
    }
  }

  private async ensureNetwork(): Promise<void> {
    try {
      await this.docker(["network", "inspect", "--format", "{{.Name}}", INGRESS_NETWORK]);
      return;
    } catch {
      // not there yet
    }
    try {
      await this.docker(["network", "create", "--label", "org.supamanager.ingress=true", INGRESS_NETWORK]);
    } catch (err) {
      // Two applies may race to create it: fine when it exists now.
      await this.docker(["network", "inspect", "--format", "{{.Name}}", INGRESS_NETWORK]).catch(() => {
        throw err;
      });
    }
  }

  private async project(): Promise<ComposeProject> {
    const s = this.configured().settings;
    const dirs = {
      configDir: join(this.dir, "config"),
      tlsDir: join(this.dir, "tls"),
      dataDir: join(this.dir, "data"),
    };
    for (const d of [this.dir, ...Object.values(dirs)]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700);
    }
    const composeFile = join(this.dir, "docker-compose.json");
    const envFile = join(this.dir, ".env");
    const compose = ingressCompose({
      image: s.image,
      address: s.address,
      port: s.port,
      httpPort: s.acme?.httpPort,
      agentPort: s.agentPort,
      ...dirs,
    });
    await writeFileAtomic(composeFile, compose, 0o600);
    await writeFile(envFile, "", { mode: 0o600 });
    return { ref: INGRESS_PROJECT, dir: this.dir, composeFile, envFile };
  }

  /**
   * The certificate files are copied next to the config (0600 in a 0700 directory), so the
   * container sees those two files only, under fixed names. Returns a digest of what the proxy
   * must load: routes and certificate (a changed certificate is a reload too).
   */
  private async writeFiles(s: IngressSettings, routes: IngressRoute[], tls: IngressTls): Promise<string> {
    let certDigest = "";
    if (tls.kind === "files" && s.certFile && s.keyFile) {
      const [cert, key] = await Promise.all([
        readFile(s.certFile, "utf8").catch((err: NodeJS.ErrnoException) => {
          throw new Error(`cannot read the ingress certificate ${s.certFile}: ${err.code ?? err.message}`);
        }),
        readFile(s.keyFile, "utf8").catch((err: NodeJS.ErrnoException) => {
          throw new Error(`cannot read the ingress key ${s.keyFile}: ${err.code ?? err.message}`);
        }),
      ]);
      if (!/-----BEGIN CERTIFICATE-----/.test(cert)) throw new Error(`${s.certFile} holds no PEM certificate`);
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) throw new Error(`${s.keyFile} holds no PEM private key`);
      certDigest = createHash("sha256").update(cert).update("\0").update(key).digest("hex");
      await mkdir(join(this.dir, "tls"), { recursive: true, mode: 0o700 });
      await writeFileAtomic(join(this.dir, "tls", "cert.pem"), cert, 0o600);
      await writeFileAtomic(join(this.dir, "tls", "key.pem"), key, 0o600);
    }
    const config = `${JSON.stringify(caddyConfig(routes, tls, certDigest), null, 2)}\n`;
    await mkdir(join(this.dir, "config"), { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(this.dir, "config", "caddy.json"), config, 0o600);
    return createHash("sha256").update(config).digest("hex");
  }
}
