/**
 * Structured JSON logs, one object per line. Works on every runtime (no Node streams).
 * Never pass secrets in `fields`; `redact` below is a last line of defence for known keys.
 */
import { loggableError } from "./errors.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: Record<LogLevel | "silent", number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
}

const SECRET_KEYS = /pass(word)?|secret|token|authorization|cookie|api_?key|db_pass/i;

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = SECRET_KEYS.test(k) ? "[redacted]" : v;
  }
  return out;
}

export function createLogger(
  level: LogLevel | "silent" = "info",
  write: (line: string) => void = (line) => console.log(line),
  bindings: Record<string, unknown> = {},
): Logger {
  const min = LEVELS[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return;
    const record = { time: new Date().toISOString(), level: lvl, msg, ...bindings, ...(fields ? redact(fields) : {}) };
    write(JSON.stringify(record, errorReplacer));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (b) => createLogger(level, write, { ...bindings, ...redact(b) }),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return loggableError(value);
  return value;
}
