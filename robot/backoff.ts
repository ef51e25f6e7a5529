/**
 * Reconnect delays: exponential backoff with "equal jitter" (half fixed, half random), as
 * described in AWS's "Exponential Backoff And Jitter" (2015).
 *
 * @module
 */

/** Backoff settings, in milliseconds. */
export interface BackoffOptions {
  /** Delay before the first retry. @default 500 */
  initialDelayMs?: number;
  /** Largest delay. @default 30_000 */
  maxDelayMs?: number;
}

/**
 * The delay before reconnect attempt `attempt`.
 *
 * @param attempt 0 for the first retry after a drop.
 * @param options Initial and maximum delay in milliseconds.
 * @param random A number in [0, 1). @default Math.random()
 * @returns A delay in milliseconds between half and all of
 *   `min(maxDelayMs, initialDelayMs * 2^attempt)`.
 * @throws {RangeError} When a delay option is negative or `maxDelayMs < initialDelayMs`.
 * @example Delays grow and stay capped
 * ```ts
 * import { reconnectDelay } from "./backoff.ts";
 * reconnectDelay(0, { initialDelayMs: 100, maxDelayMs: 1000 }, 0); // 50
 * reconnectDelay(10, { initialDelayMs: 100, maxDelayMs: 1000 }, 0.999); // ≈ 1000
 * ```
 */
export function reconnectDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: number = Math.random(),
): number {
  const initial = options.initialDelayMs ?? 500;
  const max = options.maxDelayMs ?? 30_000;
  if (initial < 0 || max < initial) {
    throw new RangeError(
      `Backoff needs 0 ≤ initialDelayMs ≤ maxDelayMs, got ${initial} and ${max}`,
    );
  }
  const ceiling = Math.min(max, initial * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
