import { z } from "zod";
import { type Credentials, writeCredentials } from "./credentials.js";

/** The control plane's answer to POST /agent/v1/join. */
export const JoinResponse = z.object({
  host_id: z.string().min(1).max(128),
  credential: z.string().min(16).max(1024),
  region: z.string().min(1).max(64),
});

/** Exit codes of `join`: 2 = the control plane said no, 3 = it could not be reached or answered nonsense. */
export class JoinError extends Error {
  override readonly name = "JoinError";
  constructor(
    message: string,
    readonly exitCode: 2 | 3,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface JoinInput {
  url: string;
  token: string;
  hostname: string;
  bindAddress: string;
  /** How apps reach this host's projects (the control plane's default when absent: direct). */
  reachability?: "direct" | "ingress" | "tunnel";
  dataDir: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export function joinUrl(controlPlane: string): string {
  const u = new URL(controlPlane);
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/agent/v1/join`;
  u.search = "";
  u.hash = "";
  return u.toString();
}

/** Exchange a join token for this host's credential and store it (0600) in the data directory. */
export async function join(input: JoinInput): Promise<{ creds: Credentials; path: string }> {
  const doFetch = input.fetch ?? fetch;
  const url = joinUrl(input.url);
  let res: Response;
  try {
    res = await doFetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({
        token: input.token,
        hostname: input.hostname,
        bind_address: input.bindAddress,
        ...(input.reachability !== undefined ? { reachability: input.reachability } : {}),
      }),
      signal: AbortSignal.timeout(input.timeoutMs ?? 30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new JoinError(`cannot reach the control plane at ${url}: ${why}`, 3);
  }
  const text = await res.text().catch(() => "");
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const message =
      typeof (body as { message?: unknown })?.message === "string"
        ? (body as { message: string }).message
        : text.trim().slice(0, 200) || res.statusText;
    throw new JoinError(`the control plane refused to join this host (HTTP ${res.status}): ${message}`, 2, res.status);
  }
  const parsed = JoinResponse.safeParse(body);
  if (!parsed.success) throw new JoinError(`unexpected answer from ${url} (HTTP ${res.status})`, 3, res.status);
  const creds: Credentials = {
    url: new URL(input.url).toString().replace(/\/+$/, ""),
    host_id: parsed.data.host_id,
    credential: parsed.data.credential,
    region: parsed.data.region,
    bind_address: input.bindAddress,
    hostname: input.hostname,
  };
  const path = await writeCredentials(input.dataDir, creds);
  return { creds, path };
}
