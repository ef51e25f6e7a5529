import assert from "node:assert/strict";
import { DEFAULT_RETRY_POLICY, parseRetryPolicy, retryDelaySeconds } from "./retry_policy.ts";

Deno.test("retryDelaySeconds() doubles from 1 s up to the 60 s cap, with jitter in [d/2, d]", () => {
  const p = DEFAULT_RETRY_POLICY;
  const table: [number, number][] = [[1, 1], [2, 2], [3, 4], [4, 8], [7, 60], [60, 60], [1000, 60]];
  for (const [retry, d] of table) {
    assert.equal(retryDelaySeconds(p, retry, 0), d / 2);
    assert.equal(retryDelaySeconds(p, retry, 0.5), d * 0.75);
    const top = retryDelaySeconds(p, retry, 0.999999);
    assert.ok(top < d && top > d * 0.9999, `${top}`);
  }
});

Deno.test("retryDelaySeconds() is never 0, NaN or over the cap, even at attempt 60 or with bad randoms", () => {
  for (const retry of [1, 2, 10, 59, 60, 1e6]) {
    for (const random of [0, 0.5, 0.999, NaN, -1, 2]) {
      const d = retryDelaySeconds({ ...DEFAULT_RETRY_POLICY, backoff_factor: 10 }, retry, random);
      assert.ok(Number.isFinite(d) && d > 0 && d <= 60, `retry ${retry} random ${random}: ${d}`);
    }
  }
  assert.throws(() => retryDelaySeconds(DEFAULT_RETRY_POLICY, 0, 0.5), RangeError);
});

Deno.test("parseRetryPolicy() takes given fields and refuses out-of-range ones naming them", () => {
  assert.deepEqual(parseRetryPolicy({ max_retries: 2 }, DEFAULT_RETRY_POLICY), {
    ...DEFAULT_RETRY_POLICY,
    max_retries: 2,
  });
  assert.throws(
    () => parseRetryPolicy({ max_retries: -1 }, DEFAULT_RETRY_POLICY),
    /retry\.max_retries/,
  );
  assert.throws(
    () => parseRetryPolicy({ backoff_factor: "2" }, DEFAULT_RETRY_POLICY),
    /retry\.backoff_factor/,
  );
  assert.throws(
    () => parseRetryPolicy({ initial_delay: 10, max_delay: 5 }, DEFAULT_RETRY_POLICY),
    /max_delay/,
  );
});
