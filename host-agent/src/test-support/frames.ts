import { type Apply, PROTOCOL_VERSION, type Stack } from "@supamanager/shared";

export const REF_A = "abcdefghijklmnopqrst";
export const REF_B = "bcdefghijklmnopqrstu";

export function stack(overrides: Partial<Stack> = {}): Stack {
  return {
    release: "local-test",
    composeFile: JSON.stringify({
      services: {
        db: { image: "busybox", mem_limit: "256m" },
        meta: { image: "busybox", deploy: { resources: { limits: { memory: "128M" } } } },
      },
    }),
    env: { POSTGRES_PASSWORD: "s3cret-$value with spaces", PORT: "5432" },
    files: [{ path: "config/kong.yml", content: "routes: []\n", mode: 0o640 }],
    requiredServices: ["db"],
    endpoints: {},
    ...overrides,
  };
}

export function apply(overrides: Partial<Apply> = {}): Apply {
  const desiredState = overrides.desiredState ?? "running";
  return {
    v: PROTOCOL_VERSION,
    type: "apply",
    ref: REF_A,
    version: 1,
    desiredState,
    restartNonce: 0,
    ...(desiredState === "deleted" ? {} : { stack: stack() }),
    ...overrides,
  };
}
