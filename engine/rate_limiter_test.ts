import assert from "node:assert/strict";
import { TokenBucket } from "./rate_limiter.ts";

Deno.test("TokenBucket allows a burst, then the sustained rate", () => {
  const bucket = new TokenBucket({ ratePerSecond: 10, burst: 3, nowMs: 1000 });
  assert.deepEqual([1, 2, 3, 4].map(() => bucket.take(1000)), [true, true, true, false]);
  assert.equal(bucket.take(1050), false); // half a token
  assert.equal(bucket.take(1100), true); // one token after 100 ms at 10/s
  assert.equal(bucket.take(1100), false);
  assert.equal(bucket.take(900), false); // a clock going back refills nothing
  // A long pause refills to the burst, never beyond.
  assert.deepEqual([1, 2, 3, 4].map(() => bucket.take(60_000)), [true, true, true, false]);
});

Deno.test("TokenBucket refuses a rate that is not positive", () => {
  assert.throws(() => new TokenBucket({ ratePerSecond: 0, nowMs: 0 }), RangeError);
  assert.throws(() => new TokenBucket({ ratePerSecond: NaN, nowMs: 0 }), RangeError);
  assert.equal(new TokenBucket({ ratePerSecond: 5, nowMs: 0 }).burst, 10);
});
