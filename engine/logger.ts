/**
 * Structured logs: one line per record, JSON (`LOG_FORMAT=json`, the default) or text for a
 * terminal (`LOG_FORMAT=text`), filtered by level (`LOG_LEVEL`). The logger is injected
 * where it is needed (the HTTP request log, alert deliveries); it never reads the
 * environment itself.
 *
 * @module
 */

/** Severity of a record, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** `LOG_LEVEL` values: a level, or `off` for nothing at all. */
export const LOG_LEVELS: readonly (LogLevel | "off")[] = ["debug", "info", "warn", "error", "off"];

/** `LOG_FORMAT` values. */
export const LOG_FORMATS: readonly LogFormat[] = ["json", "text"];

/** How records are written: one JSON object per line, or `time LEVEL message key=value…`. */
export type LogFormat = "json" | "text";

/** Fields of a record (JSON values). */
export type LogFields = Record<string, unknown>;

/** A structured logger. Methods never throw. */
export interface Logger {
  /** Writes a record at `level` with a message and fields, when the level is enabled. */
  log(level: LogLevel, message: string, fields?: LogFields): void;
  /** Whether records at `level` are written (to skip building expensive fields). */
  enabled(level: LogLevel): boolean;
}

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** @default "json" */
  format?: LogFormat;
  /** Lowest level written; `off` writes nothing. @default "info" */
  level?: LogLevel | "off";
  /**
   * Writes one line (without its line feed).
   * @default console.log (standard output)
   */
  write?: (line: string) => void;
  /** Milliseconds since the epoch, for the `time` field. @default Date.now */
  now?: () => number;
}

const RANK: Record<LogLevel | "off", number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  off: 99,
};

/** A logger that writes nothing (the default of components that take one). */
export const silentLogger: Logger = { log: () => {}, enabled: () => false };

function textValue(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

/**
 * Builds a logger. A JSON record is `{"time": RFC 3339, "level", "msg", ...fields}` on one
 * line; a text record is `time LEVEL msg key=value …` (values with spaces quoted).
 *
 * @example Request logs as JSON lines
 * ```ts
 * const logger = createLogger({ format: "json", level: "info" });
 * logger.log("info", "request", { method: "GET", path: "/healthz", status: 200 });
 * // {"time":"2026-…","level":"info","msg":"request","method":"GET","path":"/healthz","status":200}
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "json";
  const threshold = RANK[options.level ?? "info"];
  const write = options.write ?? ((line: string) => console.log(line));
  const now = options.now ?? Date.now;
  return {
    enabled: (level) => RANK[level] >= threshold,
    log(level, message, fields = {}) {
      if (RANK[level] < threshold) return;
      const time = new Date(now()).toISOString();
      let line: string;
      try {
        line = format === "json" ? JSON.stringify({ time, level, msg: message, ...fields }) : [
          time,
          level.toUpperCase(),
          message,
          ...Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) =>
            `${k}=${textValue(v)}`
          ),
        ].join(" ");
      } catch (error) {
        // A field JSON cannot write (a cycle, a BigInt): the record still goes out.
        line = JSON.stringify({ time, level, msg: message, log_error: String(error) });
      }
      try {
        write(line);
      } catch {
        // Logging must never break the caller (a closed stdout, for one).
      }
    },
  };
}
