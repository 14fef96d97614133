// A project service for the NAT end-to-end test (nat.test.ts), run with the machine's node inside
// the postgres-meta test image, behind the `local` release's gateway (route /blob/). Node's
// built-ins only: the image has no other packages for it.
//
//   GET  /health                                200 "ok"
//   POST /upload                                {bytes, sha256} of the body it read
//   GET  /download?bytes=N&seed=S[&delayMs=D]   N bytes of pattern(S), a pause of D ms between pieces
//   GET  /slow?ms=T                             answers "late" after T ms
//   GET  /ws (WebSocket)                        echoes every message, answers pings
//
// The same file is imported by nat-client.mjs for pattern(), so both ends know a body's checksum.
import { createHash } from "node:crypto";
import http from "node:http";
import { fileURLToPath } from "node:url";

/** `bytes` deterministic, incompressible bytes from `seed` (xorshift32), in pieces of `piece` bytes. */
export function* pattern(bytes, seed, piece = 256 * 1024) {
  let x = seed >>> 0 || 1;
  let left = bytes;
  while (left > 0) {
    const n = Math.min(piece, left);
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x;
    }
    yield Buffer.from(words.buffer, 0, n);
    left -= n;
  }
}

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** One unmasked WebSocket frame (a server's), FIN set. */
function wsFrame(opcode, payload) {
  const len = payload.byteLength;
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = 0x80 | opcode;
  if (len < 126) head[1] = len;
  else if (len < 65536) {
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

/** RFC 6455 echo, enough for one client's unfragmented messages. */
function wsEcho(req, socket, head) {
  socket.on("error", () => socket.destroy());
  const key = req.headers["sec-websocket-key"];
  if (typeof key !== "string") {
    socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    return;
  }
  const accept = createHash("sha1")
    .update(key + WS_GUID)
    .digest("base64");
  socket.write(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Accept: " +
      accept +
      "\r\n\r\n",
  );
  let buf = head;
  const parse = () => {
    while (buf.byteLength >= 2) {
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.byteLength < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.byteLength < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const maskAt = off;
      if (masked) off += 4;
      if (buf.byteLength < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskAt + (i & 3)];
      buf = buf.subarray(off + len);
      if (opcode === 8) {
        socket.end(wsFrame(8, payload.subarray(0, 2)));
        return;
      }
      if (opcode === 9) socket.write(wsFrame(10, payload));
      else if (opcode === 1 || opcode === 2) socket.write(wsFrame(opcode, payload));
    }
  };
  socket.on("data", (chunk) => {
    buf = buf.byteLength ? Buffer.concat([buf, chunk]) : chunk;
    parse();
  });
  parse();
}

function serve(port) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://blob");
    if (url.pathname === "/health") {
      res.end("ok");
      return;
    }
    if (url.pathname === "/upload" && req.method === "POST") {
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (c) => {
        hash.update(c);
        bytes += c.byteLength;
      });
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ bytes, sha256: hash.digest("hex") }));
      });
      return;
    }
    if (url.pathname === "/download") {
      const bytes = Number(url.searchParams.get("bytes") ?? 0);
      const seed = Number(url.searchParams.get("seed") ?? 1);
      const delayMs = Number(url.searchParams.get("delayMs") ?? 0);
      const pieces = pattern(bytes, seed, delayMs > 0 ? 64 * 1024 : 256 * 1024);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(bytes) });
      let timer = null;
      const next = () => {
        timer = null;
        for (;;) {
          const { value, done } = pieces.next();
          if (done) {
            res.end();
            return;
          }
          const ok = res.write(value);
          // A drip pauses after every piece, drained or not (a 64 KiB piece is over the
          // writable's high-water mark, so waiting for 'drain' alone would not slow it down).
          if (delayMs > 0) {
            timer = setTimeout(next, delayMs);
            return;
          }
          if (!ok) {
            res.once("drain", next);
            return;
          }
        }
      };
      res.on("close", () => {
        if (timer) clearTimeout(timer);
        pieces.return();
      });
      next();
      return;
    }
    if (url.pathname === "/slow") {
      const timer = setTimeout(() => res.end("late"), Number(url.searchParams.get("ms") ?? 1000));
      res.on("close", () => clearTimeout(timer));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"message":"no such blob route"}');
  });
  server.on("upgrade", wsEcho);
  server.listen(port, "0.0.0.0");
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve(9000);
