/**
 * A token bucket: the per-connection limit on robot messages (pure; time is passed in).
 *
 * @module
 */

/** Options of {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second (messages per second sustained); > 0. */
  ratePerSecond: number;
  /** Most tokens held (the largest burst); >= 1. @default 2 × ratePerSecond */
  burst?: number;
  /** Start time, ms since epoch; the bucket starts full. */
  nowMs: number;
}

/**
 * Allows `ratePerSecond` events per second on average and bursts of up to `burst`.
 *
 * @example Two messages per second, bursts of two
 * ```ts
 * const bucket = new TokenBucket({ ratePerSecond: 2, burst: 2, nowMs: 0 });
 * bucket.take(0); // true
 * bucket.take(0); // true
 * bucket.take(0); // false
 * bucket.take(500); // true: half a second refilled one token
 * ```
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  /** @throws {RangeError} when the rate is not > 0 or the burst is below 1. */
  constructor(options: TokenBucketOptions) {
    const { ratePerSecond, nowMs } = options;
    const burst = options.burst ?? Math.max(1, 2 * ratePerSecond);
    if (!(ratePerSecond > 0)) {
      throw new RangeError(`ratePerSecond must be > 0, got ${ratePerSecond}`);
    }
    if (!(burst >= 1)) throw new RangeError(`burst must be >= 1, got ${burst}`);
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = nowMs;
  }

  /**
   * Takes one token if there is one.
   * @param nowMs the current time, ms since epoch (a clock going back adds nothing).
   * @returns whether the event is allowed.
   */
  take(nowMs: number): boolean {
    if (nowMs > this.#at) {
      this.#tokens = Math.min(
        this.burst,
        this.#tokens + (nowMs - this.#at) / 1000 * this.ratePerSecond,
      );
      this.#at = nowMs;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
