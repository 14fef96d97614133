// One call to a project by its tunnel name, made from wherever this process runs (the NAT test
// runs it inside the "outside" network namespace, as an app on the internet would call). Prints
// JSON lines on stdout: progress events ({event: "sent" | "head" | "open", at}) as they happen, then the
// result as the last line. Times are this machine's Date.now(), comparable with the test's.
//
// HTTP: {status, bytes, sha256, body, aborted, endedAt} (+ sentBytes/sentSha256 for an upload,
// + expectedSha256 when `expectPattern` names the body the server should have sent).
// WebSocket (`ws`): {opened, echoed, mismatches, closeCode, endedAt}.
import { createHash } from "node:crypto";
import http from "node:http";
import WebSocket from "ws";
import { pattern } from "./nat-blob.mjs";

const o = JSON.parse(process.argv[2]);
const emit = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

function sha256Of(bytes, seed) {
  const hash = createHash("sha256");
  for (const piece of pattern(bytes, seed)) hash.update(piece);
  return hash.digest("hex");
}

function httpCall() {
  // `md5Of`: a query hashing that many "y" characters (too large a body to pass as an argument).
  const json = o.md5Of !== undefined ? { query: `select md5('${"y".repeat(o.md5Of)}') as sum` } : o.json;
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  const length = o.upload ? o.upload.bytes : body?.byteLength;
  const req = http.request(
    {
      host: o.host,
      port: o.port,
      method: o.method ?? (body || o.upload ? "POST" : "GET"),
      path: o.path,
      agent: false,
      headers: {
        host: o.hostHeader,
        ...(body ? { "content-type": "application/json" } : {}),
        ...(o.upload ? { "content-type": "application/octet-stream" } : {}),
        ...(length !== undefined ? { "content-length": String(length) } : {}),
        ...o.headers,
      },
    },
    (res) => {
      emit({ event: "head", status: res.statusCode, at: Date.now() });
      const hash = createHash("sha256");
      const head = [];
      let bytes = 0;
      res.on("data", (c) => {
        hash.update(c);
        bytes += c.byteLength;
        if (bytes <= 65536) head.push(c);
      });
      let done = false;
      const finish = (aborted) => {
        if (done) return;
        done = true;
        emit({
          status: res.statusCode,
          bytes,
          sha256: hash.digest("hex"),
          body: bytes <= 65536 ? Buffer.concat(head).toString() : "",
          aborted,
          endedAt: Date.now(),
          ...sent,
          ...(o.expectPattern ? { expectedSha256: sha256Of(o.expectPattern.bytes, o.expectPattern.seed) } : {}),
        });
      };
      res.on("end", () => finish(!res.complete));
      res.on("aborted", () => finish(true));
      res.on("close", () => finish(!res.complete));
      res.on("error", () => {});
    },
  );
  const sent = {};
  if (o.announceSent) req.on("finish", () => emit({ event: "sent", at: Date.now() }));
  req.setTimeout(o.timeoutMs ?? 60000, () => req.destroy(new Error("client timeout")));
  req.on("error", (err) => emit({ status: 0, error: err.message, endedAt: Date.now() }));
  if (!o.upload) {
    req.end(body);
    return;
  }
  // A generated body, written with back-pressure and hashed as it goes.
  const hash = createHash("sha256");
  const pieces = pattern(o.upload.bytes, o.upload.seed);
  let count = 0;
  const write = () => {
    for (;;) {
      const { value, done } = pieces.next();
      if (done) {
        sent.sentBytes = count;
        sent.sentSha256 = hash.digest("hex");
        req.end();
        return;
      }
      hash.update(value);
      count += value.byteLength;
      if (!req.write(value)) {
        req.once("drain", write);
        return;
      }
    }
  };
  write();
}

/** `ws: {messages, maxBytes, holdMs}`: echo `messages` random messages; then keep pinging for holdMs. */
function wsCall() {
  const { messages = 10, maxBytes = 256 * 1024, holdMs = 0 } = o.ws;
  const socket = new WebSocket(`ws://${o.host}:${o.port}${o.path}`, {
    headers: { host: o.hostHeader, ...o.headers },
    perMessageDeflate: false,
  });
  const sentMessages = [];
  let echoed = 0;
  let mismatches = 0;
  let opened = false;
  let hold = null;
  socket.on("open", () => {
    opened = true;
    emit({ event: "open", at: Date.now() });
    for (let i = 0; i < messages; i++) {
      const size = 1 + Math.floor(Math.random() * maxBytes);
      const msg = Buffer.alloc(size);
      for (let j = 0; j < size; j += 4096) msg[j] = (i + j) & 0xff;
      msg.writeUInt32BE(i, 0);
      sentMessages.push(msg);
      socket.send(msg, { binary: true });
    }
    if (messages === 0) startHold();
  });
  const startHold = () => {
    if (holdMs === 0) {
      socket.close(1000, "done");
      return;
    }
    hold = setInterval(() => socket.send(Buffer.from("tick")), 200);
    setTimeout(() => socket.close(1000, "done"), holdMs);
  };
  socket.on("message", (data) => {
    if (echoed >= sentMessages.length) return; // the ticks of the hold
    if (!Buffer.from(data).equals(sentMessages[echoed])) mismatches += 1;
    echoed += 1;
    if (echoed === messages) startHold();
  });
  socket.on("unexpected-response", (_req, res) => {
    emit({ opened, status: res.statusCode, echoed, mismatches, endedAt: Date.now() });
    process.exit(0);
  });
  socket.on("error", () => {});
  socket.on("close", (code) => {
    if (hold) clearInterval(hold);
    emit({ opened, echoed, mismatches, closeCode: code, endedAt: Date.now() });
  });
}

if (o.ws) wsCall();
else httpCall();
