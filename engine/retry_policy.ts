/**
 * Retries with exponential backoff, after the reference's `RetryPolicy` (`max_retries` 3,
 * `initial_delay` 1 s, `max_delay` 60 s, `backoff_factor` 2) plus jitter. Pure: the random
 * number is passed in.
 *
 * @module
 */

/** The reference's RetryPolicy. Delays in seconds. */
export interface RetryPolicy {
  /** Retries after the first attempt: 2 means at most 3 attempts. @default 3 */
  max_retries: number;
  /** Seconds before the first retry. @default 1 */
  initial_delay: number;
  /** Largest delay in seconds. @default 60 */
  max_delay: number;
  /** @default 2 */
  backoff_factor: number;
}

/** The reference's defaults. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  max_retries: 3,
  initial_delay: 1,
  max_delay: 60,
  backoff_factor: 2,
};

/**
 * Error types (as robots report them in `job_result.error.type`) worth retrying by
 * default: transient conditions, never deterministic workflow errors such as
 * `UnsupportedNodeError` or `ExpressionError`.
 */
export const DEFAULT_RETRYABLE_ERRORS: readonly string[] = [
  "TimeoutError",
  "WorkflowTimeoutError",
  "ConnectionError",
  "NetworkError",
  "TransientError",
  "ElementNotFoundError",
  "job_timeout",
];

/**
 * Delay before retry number `retry` (1-based), in seconds: `min(initial × factor^(retry-1),
 * max)`, then "equal jitter" — uniformly in [d/2, d] — so retries of many jobs spread out
 * without ever being 0, NaN or over the cap, whatever the attempt number.
 * @param random a number in [0, 1).
 * @throws {RangeError} for a retry number below 1.
 */
export function retryDelaySeconds(policy: RetryPolicy, retry: number, random: number): number {
  if (!Number.isInteger(retry) || retry < 1) {
    throw new RangeError(`retry must be an integer >= 1, got ${retry}`);
  }
  const cap = Math.max(0.001, policy.max_delay);
  const initial = Math.min(cap, Math.max(0.001, policy.initial_delay));
  const factor = Math.max(1, policy.backoff_factor);
  // Compare in log space so factor^(retry-1) never overflows to Infinity or NaN.
  const grows = Math.log(initial) + (retry - 1) * Math.log(factor) >= Math.log(cap);
  const d = grows ? cap : initial * factor ** (retry - 1);
  const r = Number.isFinite(random) ? Math.min(Math.max(random, 0), 1) : 0.5;
  return Math.min(cap, d / 2 + (r * d) / 2);
}

/**
 * Validates a per-job retry policy given over the API (fields optional, others default).
 * @throws {RangeError} naming the field.
 */
export function parseRetryPolicy(value: unknown, defaults: RetryPolicy): RetryPolicy {
  if (value === undefined || value === null) return defaults;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new RangeError("retry must be an object");
  }
  const v = value as Record<string, unknown>;
  const out = { ...defaults };
  const limits: Record<keyof RetryPolicy, [number, number, boolean]> = {
    max_retries: [0, 100, true],
    initial_delay: [0.001, 86_400, false],
    max_delay: [0.001, 86_400, false],
    backoff_factor: [1, 100, false],
  };
  for (
    const [key, [min, max, integer]] of Object.entries(limits) as [
      keyof RetryPolicy,
      [number, number, boolean],
    ][]
  ) {
    if (v[key] === undefined) continue;
    const n = v[key];
    if (
      typeof n !== "number" || !Number.isFinite(n) || n < min || n > max ||
      (integer && !Number.isInteger(n))
    ) {
      throw new RangeError(
        `retry.${key} must be ${integer ? "an integer" : "a number"} in [${min}, ${max}], got ${
          JSON.stringify(n)
        }`,
      );
    }
    out[key] = n;
  }
  if (out.max_delay < out.initial_delay) {
    throw new RangeError("retry.max_delay must be >= retry.initial_delay");
  }
  return out;
}
