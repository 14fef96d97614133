import { DOCKER_LOGS_MAX_BYTES, type DockerLogLine } from "@supamanager/shared";

/** Longest single line kept (longer ones are cut, with a marker). */
export const MAX_LOG_LINE_CHARS = 8 * 1024;

/**
 * Docker's log stream for a container without a TTY is multiplexed: frames of an 8-byte header
 * (byte 0: 1 stdout, 2 stderr; bytes 4..7: payload size, big-endian) and the payload. A TTY
 * container's stream is raw (all stdout). Returns the text of each stream.
 */
export function demuxDockerLogs(buf: Buffer): { stream: DockerLogLine["stream"]; text: string }[] {
  if (!looksMultiplexed(buf)) return buf.length > 0 ? [{ stream: "stdout", text: buf.toString("utf8") }] : [];
  const order: { stream: DockerLogLine["stream"]; text: Buffer }[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const kind = buf[offset];
    const size = buf.readUInt32BE(offset + 4);
    const payload = buf.subarray(offset + 8, Math.min(buf.length, offset + 8 + size));
    offset += 8 + size;
    const stream = kind === 2 ? "stderr" : "stdout";
    order.push({ stream, text: payload });
  }
  // Consecutive frames of one stream may split a line: join runs of the same stream.
  const out: { stream: DockerLogLine["stream"]; text: string }[] = [];
  for (const f of order) {
    const last = out[out.length - 1];
    if (last && last.stream === f.stream) last.text += f.text.toString("utf8");
    else out.push({ stream: f.stream, text: f.text.toString("utf8") });
  }
  return out;
}

function looksMultiplexed(buf: Buffer): boolean {
  if (buf.length < 8) return false;
  const kind = buf[0];
  return (kind === 0 || kind === 1 || kind === 2) && buf[1] === 0 && buf[2] === 0 && buf[3] === 0;
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) ?/;

/** Split demultiplexed text into lines; strips Docker's `timestamps: true` prefix into `timestamp`. */
export function toLogLines(
  service: string,
  parts: { stream: DockerLogLine["stream"]; text: string }[],
): DockerLogLine[] {
  const lines: DockerLogLine[] = [];
  for (const part of parts) {
    const raw = part.text.split("\n");
    if (raw[raw.length - 1] === "") raw.pop();
    for (let text of raw) {
      text = text.replace(/\r$/, "");
      const line: DockerLogLine = { service, stream: part.stream, text };
      const m = TIMESTAMP.exec(text);
      if (m?.[1]) {
        line.timestamp = m[1];
        line.text = text.slice(m[0].length);
      }
      if (line.text.length > MAX_LOG_LINE_CHARS) line.text = `${line.text.slice(0, MAX_LOG_LINE_CHARS)}… [line cut]`;
      lines.push(line);
    }
  }
  return lines;
}

/**
 * Lines of several containers merged by time (stable: lines without a timestamp keep their
 * place), the last `tail` of them, then bounded to `maxBytes` of text by dropping the oldest.
 */
export function lastLines(
  lines: DockerLogLine[],
  tail: number,
  maxBytes = DOCKER_LOGS_MAX_BYTES,
): { lines: DockerLogLine[]; truncated: boolean } {
  const sorted = lines
    .map((l, i) => ({ l, i }))
    .sort((a, b) => {
      const ta = a.l.timestamp;
      const tb = b.l.timestamp;
      if (ta && tb && ta !== tb) return Date.parse(ta) - Date.parse(tb) || (ta < tb ? -1 : 1);
      return a.i - b.i;
    })
    .map((x) => x.l);
  const kept = sorted.slice(Math.max(0, sorted.length - tail));
  let bytes = 0;
  let start = kept.length;
  while (start > 0) {
    const l = kept[start - 1] as DockerLogLine;
    const size = Buffer.byteLength(l.text, "utf8") + l.service.length + 64;
    if (bytes + size > maxBytes) break;
    bytes += size;
    start--;
  }
  return { lines: kept.slice(start), truncated: start > 0 };
}
