import { describe, expect, it } from "vitest";
import { composeArgv, composeEnv, parseHealth, toContainerInfo } from "./docker.js";
import { run, scrubTail } from "./exec.js";
import { ExecError } from "./types.js";

const project = {
  ref: "abcdefghijklmnopqrst",
  dir: "/data/projects/abcdefghijklmnopqrst",
  composeFile: "/data/projects/abcdefghijklmnopqrst/docker-compose.json",
  envFile: "/data/projects/abcdefghijklmnopqrst/.env",
};

describe("composeArgv", () => {
  it("builds argv arrays with the project's name, directory, file and env file", () => {
    const flags = [
      "--project-name",
      project.ref,
      "--project-directory",
      project.dir,
      "--file",
      project.composeFile,
      "--env-file",
      project.envFile,
    ];
    expect(composeArgv("v2", project, ["up", "-d"])).toEqual(["docker", ["compose", ...flags, "up", "-d"]]);
    expect(composeArgv("v1", project, ["down", "-v"])).toEqual(["docker-compose", [...flags, "down", "-v"]]);
  });
});

describe("composeEnv", () => {
  it("keeps what reaches Docker and drops everything else (no interpolation leaks, no COMPOSE_*)", () => {
    const env = composeEnv({
      PATH: "/bin",
      HOME: "/root",
      DOCKER_HOST: "unix:///x.sock",
      POSTGRES_PASSWORD: "leak",
      COMPOSE_PROJECT_NAME: "other",
      COMPOSE_FILE: "/tmp/evil.yml",
    });
    expect(env).toEqual({ PATH: "/bin", HOME: "/root", DOCKER_HOST: "unix:///x.sock" });
  });
});

describe("container state", () => {
  it.each([
    ["Up 3 seconds (healthy)", "healthy"],
    ["Up 3 seconds (unhealthy)", "unhealthy"],
    ["Up 1 second (health: starting)", "starting"],
    ["Up 2 hours", "none"],
  ] as const)("parseHealth(%s) = %s", (status, health) => {
    expect(parseHealth(status)).toBe(health);
  });

  it("maps Docker's list entries and ignores containers without a service label", () => {
    const base = {
      Id: "c1",
      Names: [],
      Image: "",
      ImageID: "",
      Command: "",
      Created: 0,
      Ports: [],
      HostConfig: { NetworkMode: "" },
      NetworkSettings: { Networks: {} },
      Mounts: [],
    };
    expect(
      toContainerInfo({
        ...base,
        State: "running",
        Status: "Up 1 second (healthy)",
        Labels: { "com.docker.compose.service": "db" },
      }),
    ).toEqual({ id: "c1", service: "db", state: "running", health: "healthy" });
    expect(
      toContainerInfo({
        ...base,
        State: "exited",
        Status: "Exited (0) (healthy)",
        Labels: { "com.docker.compose.service": "db" },
      }),
    ).toEqual({ id: "c1", service: "db", state: "exited", health: "none" });
    expect(
      toContainerInfo({ ...base, State: "weird", Status: "", Labels: { "com.docker.compose.service": "x" } })?.state,
    ).toBe("dead");
    expect(toContainerInfo({ ...base, State: "running", Status: "", Labels: {} })).toBeNull();
  });
});

describe("exec", () => {
  it("scrubs secrets (longest first) and keeps a bounded tail", () => {
    expect(scrubTail("pw=hunter22 and hunter2", ["hunter2", "hunter22"])).toBe("pw=*** and ***");
    const long = `${"x".repeat(5000)}END`;
    const tail = scrubTail(long, [], 100);
    expect(tail.length).toBe(101);
    expect(tail.endsWith("END")).toBe(true);
  });

  it("runs argv without a shell: metacharacters are plain arguments", async () => {
    expect(await run("printf", ["%s", "$(echo pwned); `id` | cat"])).toBe("$(echo pwned); `id` | cat");
  });

  it("rejects with ExecError carrying the command, args, exit code and scrubbed stderr", async () => {
    const err = await run("sh", ["-c", 'echo "bad password s3cretvalue" >&2; exit 3'], {
      secrets: ["s3cretvalue"],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect(err).toMatchObject({ command: "sh", exitCode: 3, stderr: "bad password ***" });
    expect((err as ExecError).args).toEqual(["-c", 'echo "bad password s3cretvalue" >&2; exit 3']);
  });

  it("reports a missing program clearly", async () => {
    await expect(run("definitely-not-a-program-here", [])).rejects.toMatchObject({
      stderr: "definitely-not-a-program-here: not found",
      exitCode: null,
    });
  });
});
