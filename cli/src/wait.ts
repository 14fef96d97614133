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

/** A live status line on a terminal (a spinner); permanent lines go above it. */
export interface LiveLine {
  /** Replace the live line's text. */
  update(text: string): void;
  /** Print a permanent line (the live line redraws below it). */
  print(line: string): void;
  /** Remove the live line. */
  stop(): void;
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs: number;
  /** One permanent line per status change or reason (stderr). */
  progress: (line: string) => void;
  /** On a terminal: a live line with the current status, the time so far and the reason. */
  live?: LiveLine;
  /** The status the request answered with: printed first, so the progress starts where the API did. */
  initial?: string;
  /** How often (in polls) the project's reasons are read again while its status stays the same. */
  detailEvery?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const StatusAnswer = z.object({ status: z.string() });
const Detail = z.looseObject({
  status: z.string(),
  status_reason: z.string().nullish(),
  pending_reason: z.string().nullish(),
});

/**
 * Poll `GET /platform/projects/{ref}/status` until the project reaches a target status (resolve
 * with it), a failure status (exit 4 with the project's status_reason), or the deadline (exit 4).
 * Every status change is a line with the time since the wait began; so is every new
 * `pending_reason` / `status_reason`, read on the first poll (a host that was offline before the
 * wait began shows at once), on each change and every few polls. Network trouble and 5xx while
 * polling are retried until the deadline; a 4xx ends the wait.
 */
export async function waitForStatus(api: ApiClient, ref: string, goal: WaitGoal, opts: WaitOptions): Promise<string> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const started = now();
  const deadline = started + opts.timeoutMs;
  const elapsed = () => `${Math.round((now() - started) / 1000)}s`;
  const say = (line: string) => (opts.live ? opts.live.print(line) : opts.progress(line));
  const detailEvery = opts.detailEvery ?? 5;
  let last: string | undefined = opts.initial;
  if (last !== undefined) say(`${ref}: ${last} (0s)`);
  let reason: string | undefined;
  let polls = 0;
  let troubleReported = false;
  const reasons = async () => {
    const d = await detail(api, ref);
    if (!d) return;
    const r = d.pending_reason ? `waiting: ${d.pending_reason}` : d.status_reason ? d.status_reason : undefined;
    if (r !== reason) {
      reason = r;
      if (r) say(`${ref}: ${r} (${elapsed()})`);
    }
  };
  try {
    for (;;) {
      let status: string | undefined;
      try {
        status = (await api.request(StatusAnswer, "GET", `/platform/projects/${ref}/status`)).status;
        troubleReported = false;
      } catch (err) {
        if (goal.gone && err instanceof ApiRequestError && err.status === 404) {
          say(`${ref}: REMOVED (${elapsed()})`);
          return "REMOVED";
        }
        if (!(err instanceof CliError) || err.exitCode !== EXIT.unavailable) throw err;
        if (!troubleReported) say(`${ref}: ${err.message}; retrying (${elapsed()})`);
        troubleReported = true;
      }
      polls += 1;
      if (status !== undefined && status !== last) {
        last = status;
        say(`${ref}: ${status} (${elapsed()})`);
        if (goal.target.includes(status)) return status;
        if (goal.failure.includes(status)) {
          const why = await detail(api, ref).then((d) => d?.status_reason);
          throw new CliError(
            `project ${ref} did not ${goal.description}: it is ${status}${why ? ` (${why})` : ""}`,
            EXIT.failed,
          );
        }
        await reasons();
      } else if (status !== undefined && (polls === 1 || polls % detailEvery === 0)) {
        await reasons();
      }
      opts.live?.update(`${ref}: ${last ?? "…"} · ${elapsed()}${reason ? ` · ${reason}` : ""}`);
      if (now() >= deadline) {
        throw new CliError(
          `timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for project ${ref} to ${goal.description} (last status ${last ?? "unknown"}${reason ? `; ${reason}` : ""})`,
          EXIT.failed,
        );
      }
      await sleep(Math.min(opts.intervalMs, Math.max(0, deadline - now())));
    }
  } finally {
    opts.live?.stop();
  }
}

async function detail(api: ApiClient, ref: string): Promise<z.output<typeof Detail> | undefined> {
  try {
    return await api.request(Detail, "GET", `/platform/projects/${ref}`);
  } catch {
    return undefined;
  }
}
