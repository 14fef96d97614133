/** Structured logging: one JSON object per line on stdout. Secrets never reach it (see redact). */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const SECRET_KEY = /credential|token|password|secret|authorization|cookie|^env$/i;
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Last line of defence: values under secret-looking keys are replaced, however deep. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? "[redacted]" : redact(v, depth + 1);
  return out;
}

export function createLogger(
  opts: { level?: LogLevel; write?: (line: string) => void; base?: LogFields; now?: () => Date } = {},
): Logger {
  const min = ORDER[opts.level ?? "info"];
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = opts.now ?? (() => new Date());
  const base = opts.base ?? {};
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const entry = redact({ ...base, ...fields }) as LogFields;
    write(JSON.stringify({ ts: now().toISOString(), level, msg, ...entry }));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...opts, base: { ...base, ...fields } }),
  };
}

/** A logger that keeps its lines, for tests. */
export function memoryLogger(level: LogLevel = "debug"): Logger & { lines: string[]; entries(): LogFields[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (l) => lines.push(l) });
  return Object.assign(logger, { lines, entries: () => lines.map((l) => JSON.parse(l) as LogFields) });
}
