import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main } from "./main.js";
import { FakeControlPlane } from "./test-support/control-plane.js";
import { FakeRuntime } from "./test-support/fake-runtime.js";

function io(extra: Partial<Parameters<typeof main>[1]> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), ...extra } };
}

describe("supamanager-agent CLI", () => {
  let cp: FakeControlPlane;
  let url: string;
  let root: string;
  let dataDir: string;

  beforeEach(async () => {
    cp = new FakeControlPlane();
    url = await cp.listen();
    root = await mkdtemp(join(tmpdir(), "agent-cli-"));
    dataDir = join(root, "data");
  });
  afterEach(async () => {
    await cp.close();
    await rm(root, { recursive: true, force: true });
  });

  it("join exchanges the token and writes credentials.json 0600 in a 0700 data dir", async () => {
    const t = io();
    const code = await main(
      [
        "join",
        "--url",
        url,
        "--token",
        "jt_secret_token",
        "--data-dir",
        dataDir,
        "--name",
        "edge-1",
        "--bind-address",
        "10.0.0.5",
      ],
      t.io,
    );
    expect(code).toBe(0);
    expect(cp.joins).toEqual([{ token: "jt_secret_token", hostname: "edge-1", bind_address: "10.0.0.5" }]);
    const file = join(dataDir, "credentials.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({
      url,
      host_id: "host_test",
      credential: cp.credential,
      region: "eu-1",
      bind_address: "10.0.0.5",
      hostname: "edge-1",
    });
    // Logs are JSON lines and carry neither the credential nor the token.
    const logged = t.out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged[0]).toMatchObject({ level: "info", msg: "joined", host_id: "host_test", region: "eu-1" });
    expect(t.out.join("\n")).not.toContain(cp.credential);
    expect(t.out.join("\n")).not.toContain("jt_secret_token");
  });

  it("join defaults the bind address to loopback", async () => {
    expect(await main(["join", "--url", url, "--token", "t", "--data-dir", dataDir], io().io)).toBe(0);
    expect(cp.joins).toMatchObject([{ bind_address: "127.0.0.1" }]);
  });

  it.each([
    [401, { message: "join token expired", code: "unauthorized" }, /HTTP 401\): join token expired/],
    [400, { message: "hostname: too long" }, /HTTP 400\): hostname: too long/],
    [500, "upstream exploded", /HTTP 500\): "upstream exploded"/],
  ])("join prints the server's message and exits 2 on HTTP %i", async (status, body, message) => {
    cp.joinAnswer = { status, body };
    const t = io();
    expect(await main(["join", "--url", url, "--token", "t", "--data-dir", dataDir], t.io)).toBe(2);
    expect(t.err.join("\n")).toMatch(message);
    await expect(stat(join(dataDir, "credentials.json"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("join exits 3 when the control plane can't be reached or answers nonsense", async () => {
    // A port that was just free: nothing listens there.
    const closed = new FakeControlPlane();
    const deadUrl = await closed.listen();
    await closed.close();
    const t = io();
    expect(await main(["join", "--url", deadUrl, "--token", "t", "--data-dir", dataDir], t.io)).toBe(3);
    expect(t.err.join("\n")).toMatch(/cannot reach the control plane at .*: ECONNREFUSED/);
    cp.joinAnswer = { status: 200, body: { hello: "world" } };
    expect(await main(["join", "--url", url, "--token", "t", "--data-dir", dataDir], io().io)).toBe(3);
  });

  it("join refuses to overwrite an existing credential unless --force", async () => {
    expect(await main(["join", "--url", url, "--token", "t", "--data-dir", dataDir], io().io)).toBe(0);
    const t = io();
    expect(await main(["join", "--url", url, "--token", "t", "--data-dir", dataDir], t.io)).toBe(1);
    expect(t.err.join("\n")).toMatch(/already holds host host_test; pass --force/);
    expect(await main(["join", "--url", url, "--token", "t", "--data-dir", dataDir, "--force"], io().io)).toBe(0);
    expect(cp.joins).toHaveLength(2);
  });

  it.each([
    [["join", "--token", "t", "--data-dir", "x"], /--url/],
    [["join", "--url", "ftp://x", "--token", "t", "--data-dir", "x"], /--url: must be an http\(s\) URL/],
    [["join", "--url", "http://x", "--data-dir", "x"], /--token: is required/],
    [["join", "--url", "http://x", "--token", "t", "--data-dir", "x", "--bind-address", "localhost"], /--bind-address/],
    [["join", "--url", "http://x", "--token", "t", "--data-dir", "x", "--bogus"], /Unknown option '--bogus'/],
    [["run"], /--data-dir: is required/],
    [["frobnicate"], /unknown command "frobnicate"/],
  ])("usage errors exit 1: %j", async (argv, message) => {
    const t = io();
    expect(await main(argv, t.io)).toBe(1);
    expect(t.err.join("\n")).toMatch(message);
    expect(cp.joins).toHaveLength(0);
  });

  it.each([[["--help"]], [["join", "--help"]], [["run", "-h"]]])("%j prints help and exits 0", async (argv) => {
    const t = io();
    expect(await main(argv, t.io)).toBe(0);
    expect(t.out.join("\n")).toMatch(/--data-dir/);
  });

  it("run without a credential file explains what to do", async () => {
    const t = io({ stopSignal: new Promise(() => {}) });
    expect(await main(["run", "--data-dir", dataDir], t.io)).toBe(1);
    expect(t.err.join("\n")).toMatch(/credentials.json does not exist; run `supamanager-agent join` first/);
  });

  it("run connects with the stored credential and exits 0 when told to stop", async () => {
    expect(await main(["join", "--url", url, "--token", "t", "--data-dir", dataDir, "--name", "edge-1"], io().io)).toBe(
      0,
    );
    let stop!: (sig: string) => void;
    const t = io({
      stopSignal: new Promise<string>((r) => {
        stop = r;
      }),
      createRuntime: async () => new FakeRuntime(),
    });
    const running = main(["run", "--data-dir", dataDir], t.io);
    await cp.until(() => cp.frames("hello").length === 1, "hello");
    expect(cp.frames("hello")[0]?.hostname).toBe("edge-1");
    stop("SIGTERM");
    expect(await running).toBe(0);
    await cp.until(() => cp.closes.length === 1, "close");
    expect(cp.closes[0]?.code).toBe(1000);
    expect(t.out.join("\n")).not.toContain(cp.credential);
    expect(t.out.map((l) => JSON.parse(l).msg)).toContain("agent stopped");
  });

  it("run warns when the credential file is readable by others", async () => {
    expect(await main(["join", "--url", url, "--token", "t", "--data-dir", dataDir], io().io)).toBe(0);
    const file = join(dataDir, "credentials.json");
    await writeFile(file, await readFile(file, "utf8"), { mode: 0o644 });
    const { chmod } = await import("node:fs/promises");
    await chmod(file, 0o644);
    const t = io({ stopSignal: Promise.resolve("SIGTERM"), createRuntime: async () => new FakeRuntime() });
    expect(await main(["run", "--data-dir", dataDir], t.io)).toBe(0);
    expect(t.out.join("\n")).toMatch(/readable by others/);
  });
});
