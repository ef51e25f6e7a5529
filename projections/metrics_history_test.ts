import assert from "node:assert/strict";
import type { RecordedEvent } from "../events/mod.ts";
import { HISTORY_RESOLUTION_MS, MetricsHistory } from "./metrics_history.ts";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
let position = 0;

/** An event recorded `seconds` after T0. */
function ev(
  stream: string,
  type: string,
  seconds: number,
  data: Record<string, unknown> = {},
): RecordedEvent {
  position++;
  return {
    globalPosition: position,
    streamId: stream,
    streamVersion: 1,
    eventId: crypto.randomUUID(),
    type,
    data,
    metadata: {},
    recordedAt: new Date(T0 + seconds * 1000),
  };
}

function fold(events: RecordedEvent[]): MetricsHistory {
  const h = new MetricsHistory();
  for (const e of events) h.apply(e);
  return h;
}

Deno.test("series() counts ended jobs per step and carries the gauges over quiet steps", () => {
  const h = fold([
    ev("robot-r1", "robot.registered", 0, { max_concurrent_jobs: 2 }),
    ev("robot-r1", "robot.connected", 0),
    ev("job-a", "job.submitted", 1),
    ev("job-a", "job.queued", 1),
    ev("job-b", "job.submitted", 2),
    ev("job-b", "job.queued", 2),
    ev("job-a", "job.dispatched", 3),
    ev("job-a", "job.started", 4),
    ev("job-a", "job.completed", 25, { result: { execution_time: 1.5 } }),
    ev("job-b", "job.dispatched", 31),
    ev("job-b", "job.failed", 32),
  ]);
  const points = h.series(T0, T0 + 60_000, 20_000);
  assert.deepEqual(points.map((p) => p.t), [T0, T0 + 20_000, T0 + 40_000]);
  assert.deepEqual(points.map((p) => [p.submitted, p.completed, p.failed]), [
    [2, 0, 0],
    [0, 1, 1],
    [0, 0, 0],
  ]);
  assert.deepEqual(points.map((p) => p.avg_execution_time), [null, 1.5, null]);
  // End of the first step: a running (of 2 slots), b queued; then both ended.
  assert.deepEqual(points.map((p) => [p.queue_depth, p.running, p.capacity, p.utilisation]), [
    [1, 1, 2, 0.5],
    [0, 0, 2, 0],
    [0, 0, 2, 0],
  ]);
  // Before the first event: nothing; a range after the last: the last gauges.
  assert.deepEqual(h.series(T0 - 20_000, T0, 10_000).map((p) => p.queue_depth), [0, 0]);
  assert.equal(h.series(T0 + 3_600_000, T0 + 3_610_000, 10_000)[0].capacity, 2);
});

Deno.test("series() refuses a step that is not a multiple of the resolution, or an empty range", () => {
  const h = new MetricsHistory();
  assert.throws(() => h.series(T0, T0 + 60_000, HISTORY_RESOLUTION_MS + 1), RangeError);
  assert.throws(() => h.series(T0, T0, HISTORY_RESOLUTION_MS), RangeError);
});

Deno.test("recent() keeps the latest events in log order; a disconnected robot's slots leave the capacity", () => {
  const events = [
    ev("robot-r2", "robot.registered", 0, { max_concurrent_jobs: 3 }),
    ev("robot-r2", "robot.connected", 0),
    ev("robot-r2", "robot.disconnected", 5),
  ];
  const h = fold(events);
  assert.deepEqual(h.recent(2).map((e) => e.type), ["robot.connected", "robot.disconnected"]);
  assert.equal(h.series(T0, T0 + 10_000, 10_000)[0].capacity, 0);
});
