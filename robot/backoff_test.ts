import assert from "node:assert/strict";
import { reconnectDelay } from "./backoff.ts";

Deno.test("reconnectDelay() doubles up to the maximum, with half of it jittered", () => {
  const opts = { initialDelayMs: 100, maxDelayMs: 1000 };
  assert.deepEqual([0, 1, 2, 3, 4, 20].map((n) => reconnectDelay(n, opts, 0)), [
    50,
    100,
    200,
    400,
    500,
    500,
  ]);
  assert.equal(reconnectDelay(2, opts, 0.5), 300);
  assert.equal(reconnectDelay(20, opts, 1), 1000);
});

Deno.test("reconnectDelay() rejects inconsistent options", () => {
  assert.throws(() => reconnectDelay(0, { initialDelayMs: 10, maxDelayMs: 5 }), RangeError);
  assert.throws(() => reconnectDelay(0, { initialDelayMs: -1 }), RangeError);
});
