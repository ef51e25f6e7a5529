/**
 * The source of time for the workflow engine and the robot client.
 *
 * Injected so that tests drive time themselves instead of sleeping.
 *
 * @module
 */

/** A clock: wall-clock time plus a cancellable sleep. */
export interface Clock {
  /** Current time in milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds (`0` yields to the event loop once).
   *
   * @param ms Delay in milliseconds.
   * @param signal Rejects with the signal's reason as soon as it is aborted; the timer is
   *   cleared.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The system clock: `Date.now()` and `setTimeout`.
 *
 * @example Measure an interval
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const start = systemClock.now();
 * await systemClock.sleep(10);
 * console.log(systemClock.now() - start >= 10);
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
