import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../runtime/exec.js";

/**
 * A ~2 MB busybox image made on this machine (no registry is reachable): Debian's busybox-static
 * binary plus one symlink per applet, `docker import`ed. Tagged by a hash of the recipe and the
 * package version, and skipped when that tag exists.
 */
const RECIPE = "busybox-static rootfs v1: /bin/busybox + applet symlinks; ENV PATH=/bin";

export async function ensureBusyboxImage(): Promise<string> {
  const version = (await run("apt-cache", ["policy", "busybox-static"])).match(/Candidate:\s*(\S+)/)?.[1] ?? "unknown";
  const tag = `supamanager-test/busybox:${createHash("sha256").update(`${RECIPE}\n${version}`).digest("hex").slice(0, 12)}`;
  try {
    await run("docker", ["image", "inspect", tag]);
    return tag;
  } catch {
    // not built yet
  }
  const work = await mkdtemp(join(tmpdir(), "busybox-image-"));
  try {
    try {
      await run("apt-get", ["download", "busybox-static"], { cwd: work, timeoutMs: 120_000 });
    } catch {
      // A fresh machine may not have package lists yet.
      await run("apt-get", ["update", "-qq"], { timeoutMs: 300_000 });
      await run("apt-get", ["download", "busybox-static"], { cwd: work, timeoutMs: 120_000 });
    }
    const deb = (await readdir(work)).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download busybox-static produced no .deb");
    const extracted = join(work, "x");
    await run("dpkg-deb", ["-x", join(work, deb), extracted]);
    const rootfs = join(work, "rootfs");
    await mkdir(join(rootfs, "bin"), { recursive: true });
    await mkdir(join(rootfs, "tmp"), { mode: 0o1777 });
    await run("cp", [join(extracted, "bin", "busybox"), join(rootfs, "bin", "busybox")]);
    const applets = (await run(join(rootfs, "bin", "busybox"), ["--list"]))
      .split("\n")
      .filter((a) => /^[\w.[-]+$/.test(a));
    for (const a of applets) if (a !== "busybox") await symlink("busybox", join(rootfs, "bin", a));
    const tar = join(work, "rootfs.tar");
    await run("tar", ["-C", rootfs, "-cf", tar, "."]);
    await run("docker", ["import", "-c", "ENV PATH=/bin", "-c", 'CMD ["/bin/sh"]', tar, tag], { timeoutMs: 120_000 });
    return tag;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
