import { INGRESS_NETWORK, type Stack } from "@supamanager/shared";
import { effectiveParts, runningServices } from "./compute.js";
import type { ReleaseManifest, ReleasePart } from "./manifest.js";
import { isProjectVariable, type ProjectVariable, referencedVariables, withDerivedVariables } from "./variables.js";

export { interpolate, referencedVariables } from "./variables.js";

/** Keep `${KNOWN}` references for Compose to interpolate; every other `$` is literal (`$$`). */
function composeValue(value: string): string {
  return value.replace(/\$\{([A-Z_][A-Z0-9_]*)\}|\$/g, (match, name: string | undefined) =>
    name !== undefined && isProjectVariable(name) ? match : "$$",
  );
}

/** Substitute `${KNOWN}` references in a config file template with the project's values. */
function fillTemplate(template: string, variables: Partial<Record<ProjectVariable, string>>, path: string): string {
  return template.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (match, name: string) => {
    if (!isProjectVariable(name)) return match;
    const value = variables[name];
    if (value === undefined) throw new Error(`file ${path} refers to \${${name}}, which has no value`);
    return value;
  });
}

export interface RenderInput {
  ref: string;
  /** Interface the host publishes ports on. */
  bindAddress: string;
  /** Reserved host port per release port name (e.g. { gateway: 54001, db: 54002 }). */
  ports: Record<string, number>;
  /** The compute size's memory, split between services by their memoryShare. */
  memoryBytes: number;
  /** The compute size's CPUs, split between services by their cpuShare (no `cpus` when absent). */
  cpus?: number;
  /** The optional parts the project runs (absent → the release's default parts). */
  parts?: readonly ReleasePart[] | null | undefined;
  /** The project's variables (secrets and facts); only those the release refers to are sent. */
  variables: Partial<Record<ProjectVariable, string>>;
  /**
   * The host serves its projects through its ingress (ADR 0036): the gateway is reached as
   * `hostname` through the host's proxy, so its port is not published; the gateway service joins
   * the ingress network instead. Absent: every port is published (direct).
   */
  ingress?: { hostname: string } | undefined;
}

/** The release port the host ingress routes to: every release names its API gateway's port so. */
export const INGRESS_PORT_NAME = "gateway";

const seconds = (s: number) => `${s}s`;

/** Where Docker's socket is on the host (mounted read-only into services with `dockerSocket`). */
export const DOCKER_SOCKET = "/var/run/docker.sock";

/** Compose's smallest useful CPU limit; below it a container barely starts. */
const MIN_CPUS = 0.05;

/** Every string of a service that Compose interpolates and that may refer to project variables. */
function interpolatedStrings(svc: ReleaseManifest["services"][string]): string[] {
  return [
    ...Object.values(svc.environment),
    ...(svc.command ?? []),
    ...(svc.entrypoint ?? []),
    ...(svc.health?.test ?? []),
  ];
}

/**
 * Render a project's Compose stack from its release. The compose file is JSON (valid YAML, so
 * no YAML dependency): project name = ref; containers, network and volumes prefixed by the ref;
 * `init: true` everywhere (fast, clean stops); ports bound to the host's bind address only;
 * secrets referenced as `${VAR}` and carried in `env`, never written into the compose file.
 */
export function renderStack(release: ReleaseManifest, input: RenderInput): Stack {
  const variables = withDerivedVariables(input.variables);
  const host = input.bindAddress.includes(":") ? `[${input.bindAddress}]` : input.bindAddress;
  const services: Record<string, unknown> = {};
  const volumes: Record<string, unknown> = {};
  const running = runningServices(release.services, effectiveParts(release, input.parts));
  const runs = new Set(running.map(([n]) => n));
  // Memory: every service gets its floor, and the rest of the size is split by the shares of the
  // services that run (so leaving a part out gives its memory to the others).
  const floors = running.reduce((n, [, s]) => n + (s.memoryMinBytes ?? 0), 0);
  // A release whose shares add up to less than 1 leaves that much unused; parts left out do not.
  const allShares = Object.values(release.services).reduce((n, s) => n + s.memoryShare, 0);
  const shares = running.reduce((n, [, s]) => n + s.memoryShare, 0) / allShares;
  const spare = Math.max(0, input.memoryBytes - floors);
  let ingress: Stack["ingress"];
  for (const [name, svc] of running) {
    const routed = input.ingress ? svc.ports.find((p) => p.name === INGRESS_PORT_NAME) : undefined;
    if (input.ingress && routed) {
      ingress = {
        hostname: input.ingress.hostname,
        upstream: `${input.ref}-${name}:${routed.container}`,
        endpoint: INGRESS_PORT_NAME,
      };
    }
    const ports = svc.ports
      .filter((p) => p !== routed)
      .map((p) => {
        const hostPort = input.ports[p.name];
        if (hostPort === undefined) throw new Error(`no host port reserved for ${input.ref}/${p.name}`);
        return `${host}:${hostPort}:${p.container}`;
      });
    for (const v of svc.volumes) volumes[v.name] = { name: `${input.ref}_${v.name}` };
    // `z`: relabelled for SELinux hosts (shared label; ignored where SELinux is off).
    const mounts = svc.mounts.map((m) => `./files/${m.file}:${m.target}:ro,z`);
    const namedVolumes = svc.volumes.map((v) => `${v.name}:${v.target}`);
    if (svc.dockerSocket) mounts.push(`${DOCKER_SOCKET}:${DOCKER_SOCKET}:ro,z`);
    const cpus =
      input.cpus === undefined
        ? undefined
        : release.cpuLimit === "size"
          ? input.cpus
          : Math.max(MIN_CPUS, Math.round(input.cpus * (svc.cpuShare ?? svc.memoryShare) * 100) / 100);
    const dependsOn = svc.dependsOn.filter((d) => runs.has(d));
    services[name] = {
      image: svc.image,
      // A locally built image (the `local` release) exists only on the host: never try a registry.
      ...(svc.imageKey ? { pull_policy: "never" } : {}),
      container_name: `${input.ref}-${name}`,
      init: true,
      restart: "unless-stopped",
      ...(svc.entrypoint ? { entrypoint: svc.entrypoint.map(composeValue) } : {}),
      ...(svc.command ? { command: svc.command.map(composeValue) } : {}),
      ...(svc.user ? { user: svc.user } : {}),
      environment: Object.fromEntries(Object.entries(svc.environment).map(([k, v]) => [k, composeValue(v)])),
      ...(ports.length > 0 ? { ports } : {}),
      ...(namedVolumes.length + mounts.length > 0 ? { volumes: [...namedVolumes, ...mounts] } : {}),
      // The socket's label must not be changed: SELinux hosts let the service read it unlabelled.
      ...(svc.dockerSocket ? { security_opt: ["label=disable"] } : {}),
      ...(dependsOn.length > 0
        ? {
            depends_on: Object.fromEntries(
              dependsOn.map((d) => [
                d,
                { condition: release.services[d]?.health ? "service_healthy" : "service_started" },
              ]),
            ),
          }
        : {}),
      mem_limit: (svc.memoryMinBytes ?? 0) + Math.floor((spare * svc.memoryShare) / shares),
      ...(cpus !== undefined ? { cpus } : {}),
      ...(svc.networkAliases.length > 0 || routed
        ? {
            networks: {
              default: svc.networkAliases.length > 0 ? { aliases: svc.networkAliases } : {},
              // The ingress reaches the gateway by its container name on the shared network.
              ...(routed ? { ingress: {} } : {}),
            },
          }
        : {}),
      ...(svc.health
        ? {
            healthcheck: {
              test: svc.health.test.map(composeValue),
              interval: seconds(svc.health.intervalSeconds),
              timeout: seconds(svc.health.timeoutSeconds),
              retries: svc.health.retries,
              start_period: seconds(svc.health.startPeriodSeconds),
            },
          }
        : {}),
      labels: { "org.supamanager.ref": input.ref, "org.supamanager.service": name },
    };
  }
  if (input.ingress && !ingress) {
    throw new Error(
      `release ${release.name} publishes no "${INGRESS_PORT_NAME}" port for the host ingress to route to`,
    );
  }
  const compose = {
    services,
    networks: {
      default: { name: `${input.ref}_net` },
      // Created by the agent before the stack is applied; shared with the host's proxy only.
      ...(ingress ? { ingress: { name: INGRESS_NETWORK, external: true } } : {}),
    },
    ...(Object.keys(volumes).length > 0 ? { volumes } : {}),
  };
  // Only the variables the release's services refer to travel to the host as environment.
  const env: Record<string, string> = {};
  for (const [serviceName, svc] of running) {
    for (const name of interpolatedStrings(svc).flatMap(referencedVariables)) {
      if (!isProjectVariable(name)) continue;
      const value = variables[name];
      if (value === undefined) throw new Error(`service ${serviceName} refers to \${${name}}, which has no value`);
      env[name] = value;
    }
  }
  return {
    release: release.name,
    composeFile: `${JSON.stringify(compose, null, 2)}\n`,
    env,
    files: release.files.map((f) => ({
      path: `files/${f.path}`,
      content: fillTemplate(f.template, variables, f.path),
      mode: f.mode,
    })),
    requiredServices: running.filter(([, s]) => s.required).map(([n]) => n),
    endpoints: renderEndpoints(release, input.ports, host, runs, ingress ? INGRESS_PORT_NAME : null),
    ...(ingress ? { ingress } : {}),
  };
}

/**
 * Where the agent reaches the project's services for RPCs (docs/data-plane.md): every published
 * port, by its port name, as `http://<bind address>:<host port>` — the host's own interface,
 * never a container address. A port the ingress serves instead is left out.
 */
function renderEndpoints(
  release: ReleaseManifest,
  ports: Record<string, number>,
  host: string,
  runs: Set<string>,
  unpublished: string | null,
) {
  const endpoints: Record<string, string> = {};
  for (const { service, name } of releasePorts(release)) {
    // Not published: the agent reaches it through the ingress (Stack.ingress.endpoint).
    if (!runs.has(service) || name === unpublished) continue;
    const hostPort = ports[name];
    if (hostPort !== undefined) endpoints[name] = `http://${host}:${hostPort}`;
  }
  return endpoints;
}

/** Every release port name, in manifest order (what a project must reserve). */
export function releasePorts(release: ReleaseManifest): { service: string; name: string }[] {
  return Object.entries(release.services).flatMap(([service, s]) => s.ports.map((p) => ({ service, name: p.name })));
}
