import assert from "node:assert/strict";
import { createEnvelope, InvalidMessageError, parseEnvelope } from "./protocol_messages.ts";
import { toJobResultPayload } from "./job_runner.ts";

Deno.test("createEnvelope() stamps a UUID, an RFC 3339 UTC time and the correlation id", () => {
  const env = createEnvelope("job_accepted", { job_id: "j" }, {
    now: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
    correlationId: "c-1",
  });
  assert.match(env.id, /^[0-9a-f-]{36}$/);
  assert.equal(env.timestamp, "2026-01-02T03:04:05.006Z");
  assert.deepEqual(env.payload, { job_id: "j" });
  assert.equal(env.correlation_id, "c-1");
  assert.equal("correlation_id" in createEnvelope("x", {}), false);
});

Deno.test("parseEnvelope() accepts envelopes and names what is wrong otherwise", () => {
  const env = parseEnvelope(JSON.stringify({ type: "pause", id: "1", timestamp: "t" }));
  assert.deepEqual(env, { type: "pause", id: "1", timestamp: "t", payload: {} });
  const bad: [unknown, RegExp][] = [
    [new Uint8Array([1]), /Binary/],
    ["{", /not JSON/],
    ["[1]", /not a JSON object/],
    ['{"id":"x"}', /no type/],
    ['{"type":"a","payload":[1]}', /payload that is not an object/],
  ];
  for (const [frame, message] of bad) {
    assert.throws(() => parseEnvelope(frame), (e: unknown) => {
      assert.ok(e instanceof InvalidMessageError);
      assert.match(e.message, message);
      return true;
    });
  }
  assert.throws(
    () => parseEnvelope('{"id":"m-9"}'),
    (e: unknown) => (e as InvalidMessageError).messageId === "m-9",
  );
});

Deno.test("toJobResultPayload() drops logs, then node outputs, then outputs to fit", () => {
  const big = "x".repeat(2000);
  const result = {
    status: "completed" as const,
    outputs: { big },
    logs: [{ timestamp: "t", level: "info" as const, message: big }],
    execution_time: 1,
    node_results: { n: { status: "completed" as const, output: { big }, duration_ms: 1 } },
  };
  assert.equal(toJobResultPayload("j", "l", result).truncated, false);
  const a = toJobResultPayload("j", "l", result, 5000).payload;
  assert.equal(a.logs, undefined);
  assert.deepEqual(a.node_results.n.output, { big });
  const b = toJobResultPayload("j", "l", result, 3000).payload;
  assert.equal(b.node_results.n.output, undefined);
  assert.deepEqual(b.outputs, { big });
  const c = toJobResultPayload("j", "l", result, 1000).payload;
  assert.deepEqual(c.outputs, { _truncated: true });
  assert.equal(c.status, "completed");
});
