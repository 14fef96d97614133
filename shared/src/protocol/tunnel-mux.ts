import {
  decodeTunnelFrame,
  encodeTunnelFrame,
  encodeTunnelJson,
  encodeTunnelWindow,
  parseTunnelJson,
  TUNNEL_DEFAULT_WINDOW,
  TUNNEL_FRAME,
  TUNNEL_MAX_DATA_BYTES,
  type TunnelAllocate,
  TunnelHead,
  TunnelOpen,
  TunnelReset,
} from "./tunnel.js";

export interface TunnelMuxOptions {
  /** Sends one binary message on the data connection. */
  send: (frame: Uint8Array) => void;
  /** Bytes either side may send on a stream before the other grants more (default 512 KiB). */
  window?: number;
  /**
   * Memory for outgoing DATA frames (default: zeroed Uint8Arrays). Node passes
   * Buffer.allocUnsafe: the frame is overwritten whole, clearing it first is wasted work.
   */
  allocate?: TunnelAllocate;
  /** Streams open at once; opening more throws (initiator) or is refused (receiver). */
  maxStreams?: number;
  /** Receiver side (the agent): a stream the peer opened. Without it every OPEN is refused. */
  onOpen?: (stream: TunnelStream, open: TunnelOpen) => void;
  /** A frame that cannot be pinned on one stream: the caller should drop the connection. */
  onProtocolError?: (message: string) => void;
}

/** Thrown by write() once the stream is reset or the connection gone. */
export class TunnelStreamClosed extends Error {
  override readonly name = "TunnelStreamClosed";
}

/**
 * One request (or upgraded connection) inside the data connection. Each direction has its own
 * credit: send() and write() send while the peer has granted room and hold the rest otherwise, so
 * one slow stream never holds the others back; the receiver grants room with consumed() once it
 * has passed bytes on (e.g. its socket drained). Callbacks are set by whoever handles the stream.
 */
export class TunnelStream {
  onHead: ((head: TunnelHead) => void) | undefined;
  onData: ((chunk: Uint8Array) => void) | undefined;
  onEnd: (() => void) | undefined;
  /** The peer reset the stream, or the connection is gone. Not called for a local reset(). */
  onReset: ((reset: TunnelReset) => void) | undefined;
  /** What send() held back for lack of credit has gone out: the source may go on. */
  onDrain: (() => void) | undefined;

  #sendWindow: number;
  /** Bytes the peer may still send before it must wait for our credit. */
  #recvBudget: number;
  #pendingCredit = 0;
  /** The part of the last send() waiting for credit (at most one chunk: the caller pauses). */
  #held: Uint8Array | null = null;
  #waiters: (() => void)[] = [];
  #localEnded = false;
  #endAfterHeld = false;
  #remoteEnded = false;
  #closed = false;

  constructor(
    readonly id: number,
    private readonly mux: TunnelMux,
    private readonly window: number,
  ) {
    this.#sendWindow = window;
    this.#recvBudget = window;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes send() holds until the peer grants more credit. */
  get heldBytes(): number {
    return this.#held?.byteLength ?? 0;
  }

  /** Bytes this side may send right now (tests). */
  get sendWindow(): number {
    return this.#sendWindow;
  }

  sendHead(head: TunnelHead): void {
    if (this.#closed) return;
    this.mux.sendRaw(encodeTunnelJson(TUNNEL_FRAME.head, this.id, head));
  }

  /**
   * Send body bytes, as a Node writable does: true when all of `chunk` went out; false when the
   * rest waits for the peer's credit (it goes out by itself, then onDrain runs) or the stream is
   * closed (check `closed`; onReset has run or will). The caller stops sending until onDrain.
   * Never throws, so it may be called from a readable's 'data' handler.
   */
  send(chunk: Uint8Array): boolean {
    if (this.#closed || this.#localEnded) return false;
    if (this.#held) {
      // Not waited for: keep order by holding this behind what already waits.
      const joined = new Uint8Array(this.#held.byteLength + chunk.byteLength);
      joined.set(this.#held);
      joined.set(chunk, this.#held.byteLength);
      this.#held = joined;
      return false;
    }
    const rest = this.#sendNow(chunk);
    if (rest === null) return true;
    this.#held = rest;
    return false;
  }

  /** Send body bytes; resolves when all were handed to the connection, waiting for credit as needed. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.send(chunk)) return;
    while (this.#held && !this.#closed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    if (this.#closed) throw new TunnelStreamClosed(`stream ${this.id} is closed`);
  }

  /** Frames of `chunk` while credit lasts; the unsent rest, or null when all went. */
  #sendNow(chunk: Uint8Array): Uint8Array | null {
    let offset = 0;
    while (offset < chunk.byteLength) {
      if (this.#sendWindow <= 0) return chunk.subarray(offset);
      const n = Math.min(chunk.byteLength - offset, this.#sendWindow, TUNNEL_MAX_DATA_BYTES);
      this.mux.sendRaw(
        encodeTunnelFrame(TUNNEL_FRAME.data, this.id, chunk.subarray(offset, offset + n), this.mux.allocate),
      );
      this.#sendWindow -= n;
      offset += n;
    }
    return null;
  }

  /** No more body from this side (after anything send() still holds). */
  end(): void {
    if (this.#closed || this.#localEnded) return;
    if (this.#held) {
      this.#endAfterHeld = true;
      return;
    }
    this.#localEnded = true;
    this.mux.sendRaw(encodeTunnelFrame(TUNNEL_FRAME.end, this.id));
    this.#finishIfDone();
  }

  /** Abandon the stream (the peer's onReset runs); pending writes reject. */
  reset(code: TunnelReset["code"], message: string): void {
    if (this.#closed) return;
    this.mux.sendRaw(encodeTunnelJson(TUNNEL_FRAME.reset, this.id, { code, message: message.slice(0, 500) }));
    this.close();
  }

  /** The receiver passed `bytes` on: grant the peer as much room again (sent in batches). */
  consumed(bytes: number): void {
    if (this.#closed || this.#remoteEnded || bytes <= 0) return;
    this.#pendingCredit += bytes;
    if (this.#pendingCredit >= this.window / 4) {
      this.mux.sendRaw(encodeTunnelWindow(this.id, this.#pendingCredit));
      this.#recvBudget += this.#pendingCredit;
      this.#pendingCredit = 0;
    }
  }

  /** Local close without telling the peer (the mux does that part). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = null;
    this.mux.forget(this);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  // ---- called by the mux ----

  receiveHead(head: TunnelHead): void {
    this.onHead?.(head);
  }

  receiveData(chunk: Uint8Array): void {
    if (this.#remoteEnded || chunk.byteLength > this.#recvBudget) {
      this.reset("protocol", this.#remoteEnded ? "data after end" : "data beyond the granted window");
      return;
    }
    this.#recvBudget -= chunk.byteLength;
    this.onData?.(chunk);
  }

  receiveEnd(): void {
    if (this.#remoteEnded) return;
    this.#remoteEnded = true;
    this.onEnd?.();
    this.#finishIfDone();
  }

  receiveWindow(increment: number): void {
    this.#sendWindow += increment;
    if (!this.#held || this.#closed) return;
    this.#held = this.#sendNow(this.#held);
    if (this.#held) return;
    for (const wake of this.#waiters.splice(0)) wake();
    if (this.#endAfterHeld) this.end();
    this.onDrain?.();
  }

  receiveReset(reset: TunnelReset): void {
    if (this.#closed) return;
    this.close();
    this.onReset?.(reset);
  }

  #finishIfDone(): void {
    if (this.#localEnded && this.#remoteEnded) this.close();
  }
}

/**
 * Streams over one data connection (shared by the control plane and the agent). The control
 * plane opens streams; the agent answers them. Frames for a stream that is already gone are
 * dropped (they were in flight when it was reset).
 */
export class TunnelMux {
  readonly #streams = new Map<number, TunnelStream>();
  readonly #window: number;
  readonly #maxStreams: number;
  /** @internal */
  readonly allocate: TunnelAllocate | undefined;
  #nextId = 1;
  #closed = false;

  constructor(private readonly opts: TunnelMuxOptions) {
    this.#window = opts.window ?? TUNNEL_DEFAULT_WINDOW;
    this.#maxStreams = opts.maxStreams ?? 256;
    this.allocate = opts.allocate;
  }

  get size(): number {
    return this.#streams.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Open a stream for `open` (control plane side). Throws when the mux is closed or full. */
  open(open: TunnelOpen): TunnelStream {
    if (this.#closed) throw new TunnelStreamClosed("the tunnel connection is closed");
    if (this.#streams.size >= this.#maxStreams) throw new TunnelStreamClosed("too many streams on this tunnel");
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const stream = new TunnelStream(id, this, this.#window);
    this.#streams.set(id, stream);
    this.sendRaw(encodeTunnelJson(TUNNEL_FRAME.open, id, open));
    return stream;
  }

  /** One binary message from the data connection. */
  receive(data: Uint8Array): void {
    if (this.#closed) return;
    const decoded = decodeTunnelFrame(data);
    if (!decoded.ok) {
      this.opts.onProtocolError?.(decoded.error);
      return;
    }
    const { type, stream: id, payload } = decoded.frame;
    if (type === TUNNEL_FRAME.open) {
      if (this.#streams.has(id)) {
        this.opts.onProtocolError?.(`stream ${id} opened twice`);
        return;
      }
      const stream = new TunnelStream(id, this, this.#window);
      const open = parseTunnelJson(TunnelOpen, payload);
      if (!open.ok) {
        this.sendRaw(encodeTunnelJson(TUNNEL_FRAME.reset, id, { code: "protocol", message: open.error }));
        return;
      }
      if (!this.opts.onOpen || this.#streams.size >= this.#maxStreams) {
        this.sendRaw(encodeTunnelJson(TUNNEL_FRAME.reset, id, { code: "refused", message: "too many streams" }));
        return;
      }
      this.#streams.set(id, stream);
      this.opts.onOpen(stream, open.value);
      return;
    }
    const stream = this.#streams.get(id);
    if (!stream) return;
    switch (type) {
      case TUNNEL_FRAME.head: {
        const head = parseTunnelJson(TunnelHead, payload);
        if (head.ok) stream.receiveHead(head.value);
        else stream.reset("protocol", head.error);
        return;
      }
      case TUNNEL_FRAME.data:
        stream.receiveData(payload);
        return;
      case TUNNEL_FRAME.end:
        stream.receiveEnd();
        return;
      case TUNNEL_FRAME.window:
        stream.receiveWindow(new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0));
        return;
      case TUNNEL_FRAME.reset: {
        const reset = parseTunnelJson(TunnelReset, payload);
        stream.receiveReset(reset.ok ? reset.value : { code: "protocol", message: reset.error });
        return;
      }
    }
  }

  /** The connection is gone: every stream is reset with `message`. */
  close(message: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) stream.receiveReset({ code: "gone", message });
    this.#streams.clear();
  }

  /** @internal */
  sendRaw(frame: Uint8Array): void {
    if (!this.#closed) this.opts.send(frame);
  }

  /** @internal */
  forget(stream: TunnelStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
  }
}

/** A Node readable as far as pipeToTunnel needs one (structural: shared/ imports no Node API). */
export interface TunnelSource {
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** A Node writable as far as pipeFromTunnel needs one. */
export interface TunnelSink {
  write(chunk: Uint8Array): boolean;
  once(event: "drain", listener: () => void): unknown;
}

/**
 * Send what `from` reads on `stream`, END once it ends. `from` is paused while the peer's credit
 * is used up and resumed by the stream's onDrain: no promise per chunk, the readable's own
 * back-pressure all the way. `check` sees each chunk first; false drops it and stops the pipe
 * (the caller has reset the stream). A stream that closes leaves `from` paused: the stream's
 * onReset owner destroys it.
 */
export function pipeToTunnel(from: TunnelSource, stream: TunnelStream, check?: (chunk: Uint8Array) => boolean): void {
  let stopped = false;
  stream.onDrain = () => {
    if (!stopped) from.resume();
  };
  from.on("data", (chunk) => {
    if (stopped) return;
    if (check && !check(chunk)) {
      stopped = true;
      return;
    }
    if (!stream.send(chunk)) from.pause();
  });
  from.on("end", () => {
    if (!stopped) stream.end();
  });
}

/**
 * Write what arrives on `stream` into `to`, granting the peer credit as `to` takes it: at once
 * for a chunk it accepted below its high-water mark, otherwise on its next 'drain' (one listener
 * for however many chunks wait). `check` sees each chunk first; false drops it.
 */
export function pipeFromTunnel(stream: TunnelStream, to: TunnelSink, check?: (chunk: Uint8Array) => boolean): void {
  let owed = 0;
  let waiting = false;
  const drained = () => {
    waiting = false;
    const n = owed;
    owed = 0;
    stream.consumed(n);
  };
  stream.onData = (chunk) => {
    if (check && !check(chunk)) return;
    if (to.write(chunk)) {
      stream.consumed(chunk.byteLength);
      return;
    }
    owed += chunk.byteLength;
    if (waiting) return;
    waiting = true;
    to.once("drain", drained);
  };
}
