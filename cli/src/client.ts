import type { z } from "zod";
import { CliError, EXIT } from "./errors.js";

/** An error answer of the API: 4xx → exit 2 (refused), 5xx → exit 3 (unavailable). */
export class ApiRequestError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    code?: string,
    requestId?: string,
  ) {
    super(message, status >= 500 ? EXIT.unavailable : EXIT.refused, {
      status,
      ...(code !== undefined ? { code } : {}),
      ...(requestId !== undefined ? { requestId } : {}),
    });
  }
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  /** Overrides the client's token for this call (login uses the session token once). */
  token?: string;
}

/** Normalise a control-plane URL given by the user: http(s) only, no trailing slash. */
export function normaliseUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new CliError(`--url must be an http(s) URL, got "${input}"`, EXIT.usage);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError(`--url must be an http(s) URL, got "${input}"`, EXIT.usage);
  }
  url.search = "";
  url.hash = "";
  return url.toString().replace(/\/+$/, "");
}

/** Describe why fetch failed without the noise: "connect ECONNREFUSED 127.0.0.1:9", "timed out after 30 s". */
function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  return e.cause?.message ?? e.cause?.code ?? e.message ?? String(err);
}

/** A thin client of the control plane's JSON API (native fetch, Bearer token). */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = 30_000,
  ) {}

  async request<S extends z.ZodType>(
    schema: S,
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<z.output<S>> {
    const url = new URL(`${this.baseUrl}${path}`);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "application/json" };
    const token = options.token ?? this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";

    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new CliError(`cannot reach ${this.baseUrl}: ${networkReason(err, this.timeoutMs)}`, EXIT.unavailable);
    }
    const text = await res.text().catch(() => "");
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const b = (body ?? {}) as {
        message?: unknown;
        msg?: unknown;
        error_description?: unknown;
        code?: unknown;
        requestId?: unknown;
      };
      const apiMessage = [b.message, b.msg, b.error_description].find((m): m is string => typeof m === "string");
      const message = apiMessage ?? `${res.status} ${res.statusText || "error"}`.trim();
      throw new ApiRequestError(
        `${method} ${path}: ${message} (HTTP ${res.status})`,
        res.status,
        typeof b.code === "string" ? b.code : undefined,
        typeof b.requestId === "string" ? b.requestId : undefined,
      );
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      throw new CliError(
        `${method} ${path}: unexpected answer from ${this.baseUrl} (is it a SupaManager control plane?)`,
        EXIT.unavailable,
        { status: res.status },
      );
    }
    return parsed.data;
  }
}
