/**
 * The request log: every request the API serves gets a request id and one log record when
 * its answer is ready.
 *
 * The id is the request's `X-Request-Id` when it has a usable one (1–128 characters of
 * letters, digits and `-_.:@/+=`), else a new UUID; it is returned in the `X-Request-Id`
 * answer header and handlers read it with `c.get("requestId")`.
 *
 * The record (`msg: "request"`) holds `request_id`, `method`, `path` (without the query
 * string, which may carry tokens), `status`, `duration_ms` (from the request to its answer's
 * head; a stream's body goes on after that), and for answers with status >= 400 the
 * `error_code` of the `{error: {code}}` body; for a 5xx raised by a handler, `error` is the
 * thrown error's message and `stack` its stack (one string, line feeds escaped: the record
 * stays one line, `LOG_FORMAT=json` or text). Level `error` for 5xx, `warn` for 4xx, else `info`.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { Logger, LogLevel } from "../engine/logger.ts";

/** Header carrying the request id, both ways. */
export const REQUEST_ID_HEADER = "X-Request-Id";

const USABLE_ID = /^[\w.:@\/+=-]{1,128}$/;

/** Options of {@linkcode requestLog}. */
export interface RequestLogOptions {
  logger: Logger;
  /** Makes a request id when the request has none. @default crypto.randomUUID */
  newId?: () => string;
  /** Milliseconds, for durations. @default performance.now */
  now?: () => number;
}

/** Variables the middleware sets on the Hono context. */
export type RequestLogVariables = { requestId: string };

/**
 * The middleware: mount it first (`app.use("*", requestLog({logger}))`) so that it sees the
 * final answer of every route, errors included (Hono's `onError` answer and `c.error`).
 */
export function requestLog(
  options: RequestLogOptions,
): MiddlewareHandler<{ Variables: RequestLogVariables }> {
  const { logger } = options;
  const newId = options.newId ?? (() => crypto.randomUUID());
  const now = options.now ?? (() => performance.now());
  return async (c, next) => {
    const started = now();
    const given = c.req.header(REQUEST_ID_HEADER);
    const requestId = given !== undefined && USABLE_ID.test(given) ? given : newId();
    c.set("requestId", requestId);
    await next();
    // A WebSocket upgrade's 101 answer has immutable headers: leave it as it is.
    if (c.res.status !== 101) c.res.headers.set(REQUEST_ID_HEADER, requestId);
    const status = c.res.status;
    const level: LogLevel = status >= 500 ? "error" : status >= 400 ? "warn" : "info";
    if (!logger.enabled(level)) return;
    const fields: Record<string, unknown> = {
      request_id: requestId,
      method: c.req.method,
      path: c.req.path,
      status,
      duration_ms: Math.round((now() - started) * 1000) / 1000,
    };
    if (status >= 400) {
      if (c.res.headers.get("content-type")?.includes("application/json")) {
        const body = await c.res.clone().json().catch(() => null) as
          | { error?: { code?: unknown } }
          | null;
        if (typeof body?.error?.code === "string") fields.error_code = body.error.code;
      }
      if (status >= 500 && c.error) {
        fields.error = c.error.message;
        if (c.error.stack !== undefined) fields.stack = c.error.stack;
      }
    }
    logger.log(level, "request", fields);
  };
}
