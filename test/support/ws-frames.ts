/**
 * Reads the WebSocket frames a client sends (RFC 6455 §5.2) off the raw TCP bytes of the server
 * side, so tests can check what goes over the wire (frame sizes, fragmentation), which a `ws`
 * server hides by reassembling messages.
 */

export interface WireFrame {
  fin: boolean;
  /** 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong. */
  opcode: number;
  /** Payload bytes. */
  length: number;
}

export class FrameMeter {
  readonly frames: WireFrame[] = [];
  #buffer: Buffer = Buffer.alloc(0);

  /** Feed bytes received from the client after the HTTP upgrade. */
  push(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) return;
      const b0 = b[0] as number;
      const b1 = b[1] as number;
      let length = b1 & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b1 & 0x80) offset += 4; // masking key (always present from a client)
      if (b.length < offset + length) return;
      this.frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, length });
      this.#buffer = b.subarray(offset + length);
    }
  }

  /** Data frames only (text, binary, continuation). */
  data(): WireFrame[] {
    return this.frames.filter((f) => f.opcode <= 2);
  }
}
