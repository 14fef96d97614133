/**
 * The few Workers runtime types the Workers entry uses, declared here instead of pulling in
 * @cloudflare/workers-types (whose globals clash with Node's in this package's typecheck).
 * Shapes follow the Workers runtime API; only what we call is declared.
 */

export interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
  readonly props: unknown;
}

/** A server-side WebSocket of the Workers runtime, with the hibernation extensions. */
export interface CfWebSocket {
  send(message: string | ArrayBuffer | Uint8Array): void;
  close(code?: number, reason?: string): void;
  serializeAttachment(value: unknown): void;
  deserializeAttachment(): unknown;
  readonly readyState: number;
}

export interface DurableObjectId {
  toString(): string;
}

export interface DurableObjectStub {
  fetch(input: Request | string, init?: RequestInit): Promise<Response>;
}

export interface DurableObjectNamespace {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): DurableObjectStub;
}

export interface DurableObjectStorage {
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

export interface DurableObjectState {
  readonly id: DurableObjectId;
  readonly storage: DurableObjectStorage;
  acceptWebSocket(ws: CfWebSocket, tags?: string[]): void;
  getWebSockets(tag?: string): CfWebSocket[];
  waitUntil(promise: Promise<unknown>): void;
}

/** `new WebSocketPair()`: [client, server]. */
export type WebSocketPairCtor = new () => { 0: CfWebSocket; 1: CfWebSocket };

/** The runtime's globals that Node does not have. */
export const workersGlobals = globalThis as unknown as {
  WebSocketPair: WebSocketPairCtor;
};

/** A `101 Switching Protocols` response carrying the client end of a WebSocketPair. */
export function webSocketResponse(client: CfWebSocket): Response {
  return new Response(null, { status: 101, webSocket: client } as ResponseInit);
}

/** The client end of an upgrade response, when it has one (responses of the Workers runtime). */
export function responseWebSocket(res: Response): CfWebSocket | null {
  return (res as Response & { webSocket?: CfWebSocket | null }).webSocket ?? null;
}
