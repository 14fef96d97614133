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
  return new JsonLogger(LEVELS[level], level, write, bindings);
}

/**
 * Methods on the prototype and bindings redacted once, so that a child (one per request, one per
 * agent connection) costs one small object, not a set of closures (ADR 0042).
 */
class JsonLogger implements Logger {
  constructor(
    private readonly min: number,
    private readonly level: LogLevel | "silent",
    private readonly write: (line: string) => void,
    private readonly bindings: Record<string, unknown>,
  ) {}

  debug(msg: string, fields?: Record<string, unknown>): void {
    if (LEVELS.debug >= this.min) this.emit("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    if (LEVELS.info >= this.min) this.emit("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    if (LEVELS.warn >= this.min) this.emit("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    if (LEVELS.error >= this.min) this.emit("error", msg, fields);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new JsonLogger(this.min, this.level, this.write, { ...this.bindings, ...redact(bindings) });
  }

  private emit(lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    const record = {
      time: new Date().toISOString(),
      level: lvl,
      msg,
      ...this.bindings,
      ...(fields ? redact(fields) : {}),
    };
    this.write(JSON.stringify(record, errorReplacer));
  }
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return loggableError(value);
  return value;
}
