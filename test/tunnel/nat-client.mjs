// One HTTP request, made from wherever this process runs (the NAT test runs it inside the
// "outside" network namespace): prints {status, bytes, sha256, body} as JSON on stdout.
import { createHash } from "node:crypto";
import http from "node:http";

const o = JSON.parse(process.argv[2]);
// `md5Of`: a query hashing that many "y" characters (too large a body to pass as an argument).
const json = o.md5Of !== undefined ? { query: `select md5('${"y".repeat(o.md5Of)}') as sum` } : o.json;
const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
const req = http.request(
  {
    host: o.host,
    port: o.port,
    method: o.method ?? (body ? "POST" : "GET"),
    path: o.path,
    agent: false,
    headers: {
      host: o.hostHeader,
      ...(body ? { "content-type": "application/json", "content-length": String(body.byteLength) } : {}),
      ...o.headers,
    },
  },
  (res) => {
    const hash = createHash("sha256");
    const head = [];
    let bytes = 0;
    res.on("data", (c) => {
      hash.update(c);
      bytes += c.byteLength;
      if (bytes <= 65536) head.push(c);
    });
    const done = (aborted) =>
      process.stdout.write(
        JSON.stringify({
          status: res.statusCode,
          bytes,
          sha256: hash.digest("hex"),
          body: bytes <= 65536 ? Buffer.concat(head).toString() : "",
          aborted,
        }),
      );
    res.on("end", () => done(false));
    res.on("aborted", () => done(true));
    res.on("error", () => {});
  },
);
req.setTimeout(o.timeoutMs ?? 60000, () => req.destroy(new Error("client timeout")));
req.on("error", (err) => process.stdout.write(JSON.stringify({ status: 0, error: err.message })));
req.end(body);
