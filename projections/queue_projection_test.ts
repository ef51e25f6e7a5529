import assert from "node:assert/strict";
import type { RecordedEvent } from "../events/mod.ts";
import { QueueProjection } from "./mod.ts";

let position = 0;
function ev(jobId: string, type: string, data: Record<string, unknown> = {}): RecordedEvent {
  position++;
  return {
    globalPosition: position,
    streamId: `job-${jobId}`,
    streamVersion: 1,
    eventId: crypto.randomUUID(),
    type,
    data,
    metadata: {},
    recordedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, position)),
  };
}

function submit(q: QueueProjection, jobId: string, priority: number): void {
  q.apply(ev(jobId, "job.submitted", { priority }));
  q.apply(ev(jobId, "job.queued", { queued_at: `t${position}` }));
}

Deno.test("queue orders critical > high > normal > low, FIFO within a priority", () => {
  const q = new QueueProjection();
  submit(q, "low1", 0);
  submit(q, "n1", 1);
  submit(q, "c1", 3);
  submit(q, "n2", 1);
  submit(q, "h1", 2);
  submit(q, "c2", 3);
  submit(q, "low2", 0);
  assert.deepEqual([...q.ordered()].map((e) => e.job_id), [
    "c1",
    "c2",
    "h1",
    "n1",
    "n2",
    "low1",
    "low2",
  ]);
  assert.equal(q.peek()?.job_id, "c1");
  assert.equal(q.size, 7);
});

Deno.test("dispatched and cancelled jobs leave the queue; a requeued job comes back at its priority", () => {
  const q = new QueueProjection();
  submit(q, "a", 1);
  submit(q, "b", 1);
  submit(q, "c", 2);
  q.apply(ev("c", "job.dispatched"));
  q.apply(ev("a", "job.cancelled"));
  assert.deepEqual([...q.ordered()].map((e) => e.job_id), ["b"]);
  q.apply(ev("c", "job.queued", { queued_at: "later", reason: "robot_lost" }));
  assert.deepEqual([...q.ordered()].map((e) => e.job_id), ["c", "b"]);
  assert.equal(q.has("a"), false);
  assert.equal(q.size, 2);
});
