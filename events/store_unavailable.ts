/**
 * Telling "the database is not reachable right now" apart from every other failure of a
 * store call: the first is worth waiting out (the same call can succeed once the server
 * is back), the others are not.
 *
 * @module
 */

/** postgres.js codes of a connection that is gone or could not be made. */
const DRIVER_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
]);

/**
 * SQLSTATEs of a server that is going away, starting, full, or refusing this login
 * (PostgreSQL Appendix A): class 08 (connection exception), 57P01 admin shutdown (also
 * `pg_terminate_backend`), 57P02 crash shutdown, 57P03 cannot connect now, 53300 too many
 * connections, and class 28 (the role may not log in, e.g. while it is `nologin`).
 */
const SQLSTATES = /^(08...|57P0[123]|53300|28...)$/;

/** Deno's error classes of a failed or broken socket. */
const DENO_ERRORS = new Set([
  "ConnectionRefused",
  "ConnectionReset",
  "ConnectionAborted",
  "BrokenPipe",
  "NotConnected",
  "TimedOut",
]);

/**
 * Whether `error` (from a store call on PostgreSQL) means the database could not be
 * reached or dropped the connection: the call may succeed if tried again later. Errors of
 * the request itself (a version conflict, invalid data, a constraint) are not.
 *
 * @param error What a store call threw.
 * @returns True for connection-level failures.
 * @example
 * ```ts
 * import { isStoreUnavailable } from "./store_unavailable.ts";
 * isStoreUnavailable(Object.assign(new Error("x"), { code: "57P01" })); // true
 * isStoreUnavailable(new TypeError("bad event")); // false
 * ```
 */
export function isStoreUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (DRIVER_CODES.has(code) || SQLSTATES.test(code))) return true;
  if (DENO_ERRORS.has(error.name)) return true;
  return error.cause !== undefined && error.cause !== error && isStoreUnavailable(error.cause);
}
