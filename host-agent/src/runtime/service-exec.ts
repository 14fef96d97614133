import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import { PROJECT_LABEL, SERVICE_LABEL } from "./docker.js";
import { ServiceNotRunning } from "./service-files.js";
import type { ServiceExec } from "./types.js";

/**
 * Runs `cmd` (argv, never a shell string) in the running container of one Compose service of
 * project `ref`, found by the labels com.docker.compose.project=<ref> and
 * com.docker.compose.service=<service> (checked again on the container, so another project's
 * container is never used). The returned stream carries Docker's multiplexed stdout/stderr
 * frames (no TTY); with `stdin`, what is written to it is the command's stdin, and ending it
 * closes that stdin.
 */
export async function execInService(
  docker: Docker,
  ref: string,
  service: string,
  cmd: readonly string[],
  opts: { stdin: boolean },
): Promise<ServiceExec> {
  const list = await docker.listContainers({
    filters: { label: [`${PROJECT_LABEL}=${ref}`, `${SERVICE_LABEL}=${service}`], status: ["running"] },
  });
  const found = list.find((c) => c.Labels?.[PROJECT_LABEL] === ref && c.Labels?.[SERVICE_LABEL] === service);
  if (!found) throw new ServiceNotRunning(ref, service);
  return execInContainer(docker, found.Id, cmd, opts);
}

/**
 * Runs `cmd` in one container named by id or name, with no label check: for containers the
 * agent started itself outside any Compose project (an upgrade's temporary database servers).
 * Same stream contract as execInService.
 */
export async function execInContainer(
  docker: Docker,
  container: string,
  cmd: readonly string[],
  opts: { stdin: boolean },
): Promise<ServiceExec> {
  const exec = await docker.getContainer(container).exec({
    Cmd: [...cmd],
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: opts.stdin,
    Tty: false,
  });
  const stream = (await exec.start({ hijack: true, stdin: opts.stdin, Tty: false })) as Duplex;
  return {
    stream,
    exitCode: async () => {
      // The output stream can end a moment before Docker records the exit.
      for (let i = 0; i < 100; i++) {
        const info = await exec.inspect();
        if (!info.Running) return info.ExitCode ?? null;
        await new Promise((r) => setTimeout(r, 50));
      }
      return null;
    },
  };
}
