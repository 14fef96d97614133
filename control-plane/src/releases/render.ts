import type { Stack } from "@supamanager/shared";
import type { ReleaseManifest } from "./manifest.js";

/** Variables a manifest's environment may refer to as `${NAME}`; their values travel in Stack.env. */
export const PROJECT_VARIABLES = ["POSTGRES_PASSWORD", "PROJECT_REF"] as const;

/** `${NAME}`: how a manifest refers to a project variable. */
export const interpolate = (name: string) => `\${${name}}`;

const REFERENCE = /\$\{([A-Z_][A-Z0-9_]*)\}/g;

export function referencedVariables(value: string): string[] {
  return [...value.matchAll(REFERENCE)].map((m) => m[1] as string);
}

/** Keep `${KNOWN}` references for Compose to interpolate; every other `$` is literal (`$$`). */
function composeValue(value: string): string {
  return value.replace(/\$\{([A-Z_][A-Z0-9_]*)\}|\$/g, (match, name: string | undefined) =>
    name !== undefined && (PROJECT_VARIABLES as readonly string[]).includes(name) ? match : "$$",
  );
}

export interface RenderInput {
  ref: string;
  /** Interface the host publishes ports on. */
  bindAddress: string;
  /** Reserved host port per release port name (e.g. { gateway: 54001, db: 54002 }). */
  ports: Record<string, number>;
  /** The compute size's memory, split between services by their memoryShare. */
  memoryBytes: number;
  dbPassword: string;
}

const seconds = (s: number) => `${s}s`;

/**
 * Render a project's Compose stack from its release. The compose file is JSON (valid YAML, so
 * no YAML dependency): project name = ref; containers, network and volumes prefixed by the ref;
 * `init: true` everywhere (fast, clean stops); ports bound to the host's bind address only;
 * secrets referenced as `${VAR}` and carried in `env`, never written into the compose file.
 */
export function renderStack(release: ReleaseManifest, input: RenderInput): Stack {
  const host = input.bindAddress.includes(":") ? `[${input.bindAddress}]` : input.bindAddress;
  const services: Record<string, unknown> = {};
  const volumes: Record<string, unknown> = {};
  for (const [name, svc] of Object.entries(release.services)) {
    const ports = svc.ports.map((p) => {
      const hostPort = input.ports[p.name];
      if (hostPort === undefined) throw new Error(`no host port reserved for ${input.ref}/${p.name}`);
      return `${host}:${hostPort}:${p.container}`;
    });
    for (const v of svc.volumes) volumes[v.name] = { name: `${input.ref}_${v.name}` };
    services[name] = {
      image: svc.image,
      container_name: `${input.ref}-${name}`,
      init: true,
      restart: "unless-stopped",
      ...(svc.command ? { command: svc.command } : {}),
      environment: Object.fromEntries(Object.entries(svc.environment).map(([k, v]) => [k, composeValue(v)])),
      ...(ports.length > 0 ? { ports } : {}),
      ...(svc.volumes.length > 0 ? { volumes: svc.volumes.map((v) => `${v.name}:${v.target}`) } : {}),
      ...(svc.dependsOn.length > 0
        ? { depends_on: Object.fromEntries(svc.dependsOn.map((d) => [d, { condition: "service_healthy" }])) }
        : {}),
      mem_limit: Math.floor(input.memoryBytes * svc.memoryShare),
      ...(svc.health
        ? {
            healthcheck: {
              test: svc.health.test,
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
  const compose = {
    services,
    networks: { default: { name: `${input.ref}_net` } },
    ...(Object.keys(volumes).length > 0 ? { volumes } : {}),
  };
  return {
    release: release.name,
    composeFile: `${JSON.stringify(compose, null, 2)}\n`,
    env: { POSTGRES_PASSWORD: input.dbPassword, PROJECT_REF: input.ref },
    files: [],
    requiredServices: Object.entries(release.services)
      .filter(([, s]) => s.required)
      .map(([n]) => n),
  };
}

/** Every release port name, in manifest order (what a project must reserve). */
export function releasePorts(release: ReleaseManifest): { service: string; name: string }[] {
  return Object.entries(release.services).flatMap(([service, s]) => s.ports.map((p) => ({ service, name: p.name })));
}
