import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REF_A, stack } from "../test-support/frames.js";
import { inspectCompose, ProjectStore, parseMemory, renderEnvFile, writeFileAtomic } from "./store.js";

describe("renderEnvFile", () => {
  it("single-quotes values so $, spaces and # stay literal", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${…} for Compose, not a JS template
    expect(renderEnvFile({ B: "a $b ${c} #d", A: "" })).toBe("A=''\nB='a $b ${c} #d'\n");
  });
  it.each([["x'y"], ["x\ny"], ["x\ry"]])("refuses a value it cannot write unambiguously: %j", (value) => {
    expect(() => renderEnvFile({ A: value })).toThrow(/quote or a line break/);
  });
  it("refuses a bad name", () => {
    expect(() => renderEnvFile({ "A=B": "x" })).toThrow(/invalid env name/);
  });
  it.each(["PATH", "HOME", "DOCKER_HOST", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME"])(
    "refuses %s, which would steer Docker or Compose",
    (key) => {
      expect(() => renderEnvFile({ [key]: "x" })).toThrow(/reserved/);
    },
  );
});

describe("parseMemory", () => {
  it.each([
    ["512m", 512 * 1024 ** 2],
    ["1g", 1024 ** 3],
    ["1GB", 1024 ** 3],
    ["1.5G", 1.5 * 1024 ** 3],
    ["100k", 102400],
    ["2048", 2048],
    [1048576, 1048576],
    ["lots", 0],
    [undefined, 0],
    [-5, 0],
  ] as const)("%j → %i", (input, bytes) => {
    expect(parseMemory(input)).toBe(bytes);
  });
});

describe("inspectCompose", () => {
  it("lists services and sums their limits; tolerates YAML (not JSON) by knowing nothing", () => {
    expect(inspectCompose(stack().composeFile)).toEqual({ services: ["db", "meta"], memLimitBytes: 384 * 1024 ** 2 });
    expect(inspectCompose("services:\n  db: {}\n")).toEqual({ services: [], memLimitBytes: 0 });
  });
});

describe("ProjectStore", () => {
  let dataDir: string;
  let store: ProjectStore;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "agent-store-"));
    store = new ProjectStore(dataDir);
    await store.init();
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("refuses refs that are not project refs (no path tricks through the ref)", () => {
    expect(() => store.dir("../../etc")).toThrow();
    expect(() => store.dir("ABCDEFGHIJKLMNOPQRST")).toThrow();
  });

  it.each(["../escape", "a/../../escape", "/abs", "docker-compose.json", ".env"])(
    "refuses the stack file path %j before writing anything",
    async (path) => {
      await expect(store.writeStack(REF_A, stack({ files: [{ path, content: "x", mode: 0o600 }] }))).rejects.toThrow(
        /leaves the project directory|reserved/,
      );
      await expect(stat(join(store.dir(REF_A), "docker-compose.json"))).rejects.toMatchObject({ code: "ENOENT" });
    },
  );

  it("reads back the env it wrote", async () => {
    await store.writeStack(REF_A, stack({ env: { A_PASSWORD: "p $x", B: "" } }));
    expect(await store.readEnv(REF_A)).toEqual({ A_PASSWORD: "p $x", B: "" });
  });

  it("init() removes leftovers of an interrupted removal; lists only project directories", async () => {
    await mkdir(join(store.root, `.trash-${REF_A}-dead`), { recursive: true });
    await mkdir(join(store.root, "not-a-ref"));
    await store.writeStack(REF_A, stack());
    await store.init();
    expect((await readdir(store.root)).sort()).toEqual([REF_A, "not-a-ref"]);
    expect(await store.listRefs()).toEqual([REF_A]);
  });

  // Issue 14 (12): what the agent leaves on disk is exactly as open as the stack says, never more,
  // whatever the process's umask; a later apply with a tighter mode tightens a file written before.
  it.each([0o000, 0o022, 0o077])(
    "writes modes exactly under umask %o: directory 0700, compose and .env 0600, files as given",
    async (mask) => {
      const previous = process.umask(mask);
      try {
        const files = [
          { path: "db/init-read-only.sql", content: "create role r;\n", mode: 0o644 },
          { path: "kong/kong.json", content: "{}", mode: 0o600 },
        ];
        await store.writeStack(REF_A, stack({ files }));
        const mode = async (rel: string) => (await stat(join(store.dir(REF_A), rel))).mode & 0o777;
        expect(await mode(".")).toBe(0o700);
        expect(await mode("db")).toBe(0o700);
        expect(await mode("docker-compose.json")).toBe(0o600);
        expect(await mode(".env")).toBe(0o600);
        expect(await mode("db/init-read-only.sql")).toBe(0o644);
        expect(await mode("kong/kong.json")).toBe(0o600);
        await store.writeStack(REF_A, stack({ files: files.map((f) => ({ ...f, mode: 0o600 })) }));
        expect(await mode("db/init-read-only.sql")).toBe(0o600);
      } finally {
        process.umask(previous);
      }
    },
  );

  it("writeFileAtomic replaces content and leaves no temp file", async () => {
    const p = join(dataDir, "f");
    await writeFile(p, "old");
    await writeFileAtomic(p, "new", 0o640);
    expect((await stat(p)).mode & 0o777).toBe(0o640);
    expect((await readdir(dataDir)).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });
});
