import { z } from "zod";
import { type ApiClient, ApiRequestError } from "./client.js";
import { CliError, EXIT } from "./errors.js";

/** What a long operation waits for. `gone`: the project disappearing (404) is success (delete). */
export interface WaitGoal {
  description: string;
  target: string[];
  failure: string[];
  gone?: boolean;
}

export const WAIT_GOALS = {
  create: { description: "come up", target: ["ACTIVE_HEALTHY"], failure: ["INIT_FAILED", "REMOVED", "GOING_DOWN"] },
  pause: { description: "pause", target: ["INACTIVE"], failure: ["PAUSE_FAILED", "REMOVED", "GOING_DOWN"] },
  restore: {
    description: "restore",
    target: ["ACTIVE_HEALTHY"],
    failure: ["RESTORE_FAILED", "REMOVED", "GOING_DOWN"],
  },
  restart: {
    description: "restart",
    target: ["ACTIVE_HEALTHY"],
    failure: ["ACTIVE_UNHEALTHY", "REMOVED", "GOING_DOWN"],
  },
  delete: { description: "be removed", target: ["REMOVED"], failure: [], gone: true },
} satisfies Record<string, WaitGoal>;

export interface WaitOptions {
  timeoutMs: number;
  intervalMs: number;
  /** One line per status change (stderr). */
  progress: (line: string) => void;
  /** The status the request answered with: printed first, so the progress starts where the API did. */
  initial?: string;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const StatusAnswer = z.object({ status: z.string() });
const Detail = z.looseObject({
  status: z.string(),
  status_reason: z.string().optional(),
  pending_reason: z.string().optional(),
});

/**
 * Poll `GET /platform/projects/{ref}/status` until the project reaches a target status (resolve
 * with it), a failure status (exit 4 with the project's status_reason), or the deadline (exit 4).
 * Network trouble and 5xx while polling are retried until the deadline; a 4xx ends the wait.
 */
export async function waitForStatus(api: ApiClient, ref: string, goal: WaitGoal, opts: WaitOptions): Promise<string> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const started = now();
  const deadline = started + opts.timeoutMs;
  const elapsed = () => `${Math.round((now() - started) / 1000)}s`;
  let last: string | undefined = opts.initial;
  if (last !== undefined) opts.progress(`${ref}: ${last} (0s)`);
  let lastPending: string | undefined;
  let troubleReported = false;
  for (;;) {
    let status: string | undefined;
    try {
      status = (await api.request(StatusAnswer, "GET", `/platform/projects/${ref}/status`)).status;
      troubleReported = false;
    } catch (err) {
      if (goal.gone && err instanceof ApiRequestError && err.status === 404) {
        opts.progress(`${ref}: REMOVED (${elapsed()})`);
        return "REMOVED";
      }
      if (!(err instanceof CliError) || err.exitCode !== EXIT.unavailable) throw err;
      if (!troubleReported) opts.progress(`${ref}: ${err.message}; retrying`);
      troubleReported = true;
    }
    if (status !== undefined && status !== last) {
      last = status;
      opts.progress(`${ref}: ${status} (${elapsed()})`);
      if (goal.target.includes(status)) return status;
      if (goal.failure.includes(status)) {
        const reason = await detail(api, ref).then((d) => d?.status_reason);
        throw new CliError(
          `project ${ref} did not ${goal.description}: it is ${status}${reason ? ` (${reason})` : ""}`,
          EXIT.failed,
        );
      }
      const d = await detail(api, ref);
      if (d?.pending_reason && d.pending_reason !== lastPending) {
        lastPending = d.pending_reason;
        opts.progress(`${ref}: waiting: ${d.pending_reason}`);
      }
    }
    if (now() >= deadline) {
      throw new CliError(
        `timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for project ${ref} to ${goal.description} (last status ${last ?? "unknown"})`,
        EXIT.failed,
      );
    }
    await sleep(Math.min(opts.intervalMs, Math.max(0, deadline - now())));
  }
}

async function detail(api: ApiClient, ref: string): Promise<z.output<typeof Detail> | undefined> {
  try {
    return await api.request(Detail, "GET", `/platform/projects/${ref}`);
  } catch {
    return undefined;
  }
}
