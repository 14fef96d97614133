/** Human output: compact, aligned tables and short values. JSON output never goes through here. */

export type Cell = string | number | boolean | null | undefined;

export function cell(v: Cell): string {
  if (v === null || v === undefined || v === "") return "-";
  return String(v);
}

/** Columns separated by two spaces, each as wide as its widest cell; no trailing blanks. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = [headers, ...rows.map((r) => headers.map((_, i) => cell(r[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => (r[i] ?? "").length)));
  return text
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

const UNITS = ["B", "K", "M", "G", "T", "P"];

/** 1536 → "1.5K", 64 GiB → "64G" (binary units, one decimal below 10). */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return "-";
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = value < 10 && unit > 0 ? value.toFixed(1).replace(/\.0$/, "") : String(Math.round(value));
  return `${shown}${UNITS[unit]}`;
}

/** "2024-05-01T10:20:30.123Z" → "2024-05-01 10:20:30Z"; null → "-". */
export function timestamp(iso: string | null | undefined): string {
  if (!iso) return "-";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** How long ago, for "last seen": "12s ago", "5m ago", "3h ago", "2d ago". */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
