import { type Job, type JobResult, PROTOCOL_VERSION } from "@supamanager/shared";
import type { Logger } from "../log.js";

export type JobHandler = (job: Job) => Promise<unknown>;

/**
 * Imperative jobs, delivered at least once: answered by job id, and a job seen again is answered
 * with the first result instead of running twice. Kinds are registered by the features that need
 * them (backups, …); an unknown kind is answered with a clear error, never ignored.
 */
export class Jobs {
  private readonly handlers = new Map<string, JobHandler>();
  private readonly results = new Map<string, Promise<JobResult>>();
  #running = 0;

  constructor(
    private readonly logger: Logger,
    private readonly remember = 1000,
  ) {}

  register(kind: string, handler: JobHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Jobs being worked on now (a self-update waits for them: their work dies with the process). */
  get running(): number {
    return this.#running;
  }

  run(job: Job): Promise<JobResult> {
    const seen = this.results.get(job.jobId);
    if (seen) return seen;
    this.#running++;
    const result = this.execute(job).finally(() => {
      this.#running--;
    });
    this.results.set(job.jobId, result);
    if (this.results.size > this.remember) {
      const oldest = this.results.keys().next().value;
      if (oldest !== undefined) this.results.delete(oldest);
    }
    return result;
  }

  private async execute(job: Job): Promise<JobResult> {
    const base = { v: PROTOCOL_VERSION, type: "job_result", jobId: job.jobId } as const;
    const handler = this.handlers.get(job.kind);
    if (!handler) {
      this.logger.warn("job of an unknown kind", { jobId: job.jobId, kind: job.kind });
      return { ...base, ok: false, error: `this agent does not know job kind "${job.kind}"` };
    }
    try {
      return { ...base, ok: true, result: await handler(job) };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.logger.error("job failed", { jobId: job.jobId, kind: job.kind, error: message });
      return { ...base, ok: false, error: message.slice(0, 4000) };
    }
  }
}
