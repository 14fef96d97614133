import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeServerFrame, type ServerFrame } from "@supamanager/shared";
import { inject } from "vitest";
import { freshDatabase } from "../../../test/support/pg.js";
import { PasswordHasher } from "../crypto/password.js";
import { nativeScrypt } from "../entry/bootstrap.js";
import { buildLambdaRuntime, type LambdaRuntime } from "../entry/lambda.js";
import { createLogger } from "../logger.js";
import { TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, type TestApp } from "./harness.js";

/**
 * Test support for the Lambda entry (ADR 0017): a local stand-in of API Gateway's @connections
 * management API, synthetic API Gateway events, and a Lambda runtime on a fresh database.
 */

/** The stage part of the stand-in's endpoint, as in `https://{api}.execute-api.{region}.amazonaws.com/{stage}`. */
export const STAGE = "prod";

/**
 * A tiny HTTP server speaking the two @connections calls the control plane makes: POST (send a
 * message) and DELETE (close). It records them, answers 410 for connections marked gone, and can
 * hand each post on (the emulator delivers them to a real socket).
 */
export class ConnectionsStandIn {
  readonly posts: { connectionId: string; text: string }[] = [];
  readonly deletes: string[] = [];
  /** Connection ids that answer 410 Gone. */
  readonly gone = new Set<string>();
  onPost: ((connectionId: string, text: string) => boolean) | undefined;
  onDelete: ((connectionId: string) => void) | undefined;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<ConnectionsStandIn> {
    let standIn: ConnectionsStandIn | undefined;
    const server = createServer((req, res) => {
      void standIn?.handle(req).then(
        ({ status, body }) => {
          res.writeHead(status, {
            "content-type": "application/json",
            ...(status === 410 ? { "x-amzn-errortype": "GoneException" } : {}),
          });
          res.end(body);
        },
        () => {
          res.writeHead(500).end();
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    standIn = new ConnectionsStandIn(server, `http://127.0.0.1:${port}/${STAGE}`);
    return standIn;
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: string }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const prefix = `/${STAGE}/@connections/`;
    if (!path.startsWith(prefix)) return { status: 404, body: '{"message":"not found"}' };
    const connectionId = decodeURIComponent(path.slice(prefix.length));
    if (this.gone.has(connectionId)) return { status: 410, body: '{"message":"Gone"}' };
    if (req.method === "POST") {
      const text = Buffer.concat(chunks).toString("utf8");
      this.posts.push({ connectionId, text });
      const delivered = this.onPost ? this.onPost(connectionId, text) : true;
      return delivered ? { status: 200, body: "" } : { status: 410, body: '{"message":"Gone"}' };
    }
    if (req.method === "DELETE") {
      this.deletes.push(connectionId);
      this.onDelete?.(connectionId);
      return { status: 204, body: "" };
    }
    return { status: 405, body: '{"message":"method not allowed"}' };
  }

  /** The frames posted to `connectionId`, decoded (an invalid one fails the test). */
  framesTo(connectionId: string): ServerFrame[] {
    return this.posts
      .filter((p) => p.connectionId === connectionId)
      .map((p) => {
        const d = decodeServerFrame(p.text);
        if (!d.ok) throw new Error(`the control plane posted an invalid frame: ${d.error.message}`);
        return d.frame;
      });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface LambdaTestRuntime extends LambdaRuntime {
  standIn: ConnectionsStandIn;
  logs: string[];
  databaseUrl: string;
  /** Close the runtime, the stand-in and drop the database. */
  dispose(): Promise<void>;
}

/** The Lambda runtime as a cold start builds it, on a fresh database (cloned from the migrated template). */
export async function createLambdaTestRuntime(env: Record<string, string> = {}): Promise<LambdaTestRuntime> {
  const fresh = await freshDatabase(inject("templateDatabase"));
  const standIn = await ConnectionsStandIn.start();
  const logs: string[] = [];
  const rt = await buildLambdaRuntime(
    {
      NODE_ENV: "test",
      DATABASE_URL: fresh.url,
      SUPAMANAGER_JWT_SECRET: TEST_JWT_SECRET,
      SUPAMANAGER_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      SUPAMANAGER_AGENT_CONNECTIONS_URL: standIn.url,
      SUPAMANAGER_RELEASE: "local",
      AWS_REGION: "eu-west-1",
      ...env,
    },
    {
      logger: createLogger("debug", (line) => logs.push(line)),
      passwords: new PasswordHasher(nativeScrypt, { ln: 10, r: 8, p: 1 }),
      clientConfig: { credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" } },
      rpcPollMs: 20,
    },
  );
  return {
    ...rt,
    standIn,
    logs,
    databaseUrl: fresh.url,
    async dispose() {
      await rt.close();
      await standIn.close();
      await fresh.drop();
    },
  };
}

// ─── synthetic API Gateway events ────────────────────────────────────────────────────────────

export interface HttpEventInit {
  headers?: Record<string, string>;
  /** JSON-encoded unless a string. */
  body?: unknown;
  base64?: boolean;
  query?: Record<string, string>;
  sourceIp?: string;
}

function bodyOf(init: HttpEventInit): { body: string | null; isBase64Encoded: boolean; json: boolean } {
  if (init.body === undefined) return { body: null, isBase64Encoded: false, json: false };
  const text = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
  return init.base64
    ? { body: Buffer.from(text).toString("base64"), isBase64Encoded: true, json: typeof init.body !== "string" }
    : { body: text, isBase64Encoded: false, json: typeof init.body !== "string" };
}

/** An API Gateway REST API (payload format 1.0) proxy event. */
export function restEvent(method: string, path: string, init: HttpEventInit = {}) {
  const { body, isBase64Encoded, json } = bodyOf(init);
  const headers: Record<string, string> = {
    Host: "abc123.execute-api.eu-west-1.amazonaws.com",
    "User-Agent": "lambda-test",
    ...(json ? { "Content-Type": "application/json" } : {}),
    ...init.headers,
  };
  return {
    version: "1.0",
    resource: "/{proxy+}",
    path,
    httpMethod: method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: init.query ?? null,
    multiValueQueryStringParameters: init.query
      ? Object.fromEntries(Object.entries(init.query).map(([k, v]) => [k, [v]]))
      : null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: "123456789012",
      apiId: "abc123",
      domainName: "abc123.execute-api.eu-west-1.amazonaws.com",
      httpMethod: method,
      path: `/${STAGE}${path}`,
      protocol: "HTTP/1.1",
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourcePath: "/{proxy+}",
      stage: STAGE,
      identity: { sourceIp: init.sourceIp ?? "203.0.113.10", userAgent: "lambda-test" },
    },
    body,
    isBase64Encoded,
  };
}

/** An API Gateway HTTP API (payload format 2.0) event, `$default` stage. */
export function httpApiEvent(method: string, path: string, init: HttpEventInit = {}) {
  const { body, isBase64Encoded, json } = bodyOf(init);
  const query = new URLSearchParams(init.query ?? {}).toString();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: query,
    headers: {
      host: "xyz789.execute-api.eu-west-1.amazonaws.com",
      "user-agent": "lambda-test",
      ...(json ? { "content-type": "application/json" } : {}),
      ...Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    },
    ...(init.query ? { queryStringParameters: init.query } : {}),
    requestContext: {
      accountId: "123456789012",
      apiId: "xyz789",
      domainName: "xyz789.execute-api.eu-west-1.amazonaws.com",
      domainPrefix: "xyz789",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: init.sourceIp ?? "203.0.113.20", userAgent: "lambda-test" },
      requestId: randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body: body ?? undefined,
    isBase64Encoded,
  };
}

/** A WebSocket API event for `route` on `connectionId`. */
export function webSocketEvent(
  route: "$connect" | "$default" | "$disconnect",
  connectionId: string,
  init: { headers?: Record<string, string>; body?: string; base64?: boolean; code?: number; reason?: string } = {},
) {
  const eventType = route === "$connect" ? "CONNECT" : route === "$disconnect" ? "DISCONNECT" : "MESSAGE";
  return {
    requestContext: {
      routeKey: route,
      eventType,
      connectionId,
      messageId: route === "$default" ? randomUUID() : undefined,
      extendedRequestId: randomUUID(),
      requestId: randomUUID(),
      domainName: "ws123.execute-api.eu-west-1.amazonaws.com",
      stage: STAGE,
      apiId: "ws123",
      connectedAt: Date.now(),
      requestTimeEpoch: Date.now(),
      identity: { sourceIp: "198.51.100.7" },
      ...(route === "$disconnect"
        ? { disconnectStatusCode: init.code ?? 1000, disconnectReason: init.reason ?? "" }
        : {}),
    },
    ...(route === "$connect"
      ? {
          headers: { Host: "ws123.execute-api.eu-west-1.amazonaws.com", ...init.headers },
          multiValueHeaders: Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k, [v]])),
        }
      : {}),
    ...(init.body !== undefined
      ? {
          body: init.base64 ? Buffer.from(init.body).toString("base64") : init.body,
          isBase64Encoded: init.base64 === true,
        }
      : { isBase64Encoded: false }),
  };
}

/** A connection id shaped like API Gateway's (base64-ish, ending in `=`). */
export function connectionId(): string {
  return `${randomUUID().replace(/-/g, "").slice(0, 14)}=`;
}

/**
 * A TestApp-shaped view of a Lambda runtime whose `request` goes through the HTTP handler as an
 * HTTP API (v2) event, so the ordinary factories (signUpAndLogin, createOrg, joinHost, …) drive
 * the Lambda entry. `hub` is absent: fleet tests on Lambda use the WebSocket events instead.
 */
export function lambdaTestApp(rt: LambdaRuntime): TestApp {
  const request: TestApp["request"] = async (path, init = {}) => {
    const { token, json, ip, headers, method, body } = init;
    const h: Record<string, string> = {};
    new Headers(headers).forEach((v, k) => {
      h[k] = v;
    });
    if (token) h.authorization = `Bearer ${token}`;
    const url = new URL(path, "http://lambda.test");
    const event = httpApiEvent(method ?? "GET", url.pathname, {
      headers: h,
      ...(json !== undefined ? { body: json } : typeof body === "string" ? { body } : {}),
      ...(url.search ? { query: Object.fromEntries(url.searchParams) } : {}),
      ...(ip ? { sourceIp: ip } : {}),
    });
    const result = (await rt.http(event as never)) as {
      statusCode: number;
      body: string;
      isBase64Encoded: boolean;
      headers?: Record<string, string>;
    };
    const payload = result.isBase64Encoded ? Buffer.from(result.body, "base64") : result.body;
    const nullBody = [101, 204, 205, 304].includes(result.statusCode);
    return new Response(nullBody ? null : payload, { status: result.statusCode, headers: result.headers ?? {} });
  };
  return {
    app: rt.app,
    deps: rt.deps,
    hub: undefined as never,
    clock: { now: () => Date.now() } as never,
    logs: [],
    request,
    close: rt.close,
  };
}
