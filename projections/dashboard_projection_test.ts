import assert from "node:assert/strict";
import type { RecordedEvent } from "../events/mod.ts";
import { DashboardProjection } from "./mod.ts";

let position = 0;
function ev(stream: string, type: string, data: Record<string, unknown> = {}): RecordedEvent {
  position++;
  return {
    globalPosition: position,
    streamId: stream,
    streamVersion: 1,
    eventId: crypto.randomUUID(),
    type,
    data,
    metadata: {},
    recordedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, position)),
  };
}

const YESTERDAY = "2026-03-09T23:59:00.000Z";
const TODAY = "2026-03-10T00:01:00.000Z";
const NOW = Date.parse("2026-03-10T12:00:00.000Z");

function job(d: DashboardProjection, id: string, createdAt: string): void {
  d.apply(ev(`job-${id}`, "job.submitted", { created_at: createdAt }));
  d.apply(ev(`job-${id}`, "job.queued", { queued_at: createdAt }));
}

Deno.test("DashboardMetrics: 'today' is the UTC day; outcomes count on the day they ended", () => {
  const d = new DashboardProjection();
  job(d, "old", YESTERDAY);
  d.apply(ev("job-old", "job.started", { started_at: YESTERDAY }));
  d.apply(
    ev("job-old", "job.completed", { completed_at: TODAY, result: { execution_time: 4 } }),
  );
  job(d, "new", TODAY);
  job(d, "queued", TODAY);
  const m = d.metrics(NOW);
  assert.equal(m.total_jobs_today, 2, "submitted today: new and queued");
  assert.equal(m.completed_jobs_today, 1, "submitted yesterday, completed today");
  assert.equal(m.average_execution_time, 4);
  assert.equal(m.success_rate, 100);
  assert.equal(m.pending_jobs, 2);
  // At 23:59 UTC of the day before, the old job's submission was "today" and nothing ended.
  const before = d.metrics(Date.parse(YESTERDAY) + 30_000);
  assert.equal(before.total_jobs_today, 1);
  assert.equal(before.completed_jobs_today, 0);
  assert.equal(before.success_rate, 0);
});

Deno.test("DashboardMetrics: success_rate and average_execution_time count exactly the documented jobs", () => {
  const d = new DashboardProjection();
  const end = (id: string, type: string, data: Record<string, unknown>) => {
    job(d, id, TODAY);
    d.apply(ev(`job-${id}`, "job.dispatched", { dispatched_at: TODAY }));
    d.apply(ev(`job-${id}`, type, data));
  };
  end("a", "job.completed", { completed_at: TODAY, result: { execution_time: 2 } });
  end("b", "job.completed", { completed_at: TODAY, result: { execution_time: 6 } });
  // Completed without a reported time: counts as completed, not in the mean (was 0 in it).
  end("c", "job.completed", { completed_at: TODAY, result: null });
  end("d", "job.failed", { completed_at: TODAY, error: "boom", result: null });
  end("e", "job.timed_out", { timed_out_at: TODAY, lease_id: "L" });
  end("f", "job.cancelled", { cancelled_at: TODAY });
  // A retried attempt is no outcome: the job is pending again.
  end("g", "job.retry_scheduled", { failed_at: TODAY, retry_at: TODAY, retry: 1 });
  const m = d.metrics(NOW);
  assert.equal(m.total_jobs_today, 7);
  assert.equal(m.completed_jobs_today, 3);
  assert.equal(m.failed_jobs_today, 2, "failed and timed out");
  assert.equal(m.success_rate, 60, "3 of 5 ended (cancelled left out)");
  assert.equal(m.average_execution_time, 4, "(2 + 6) / 2");
  assert.equal(m.pending_jobs, 1);
  assert.equal(m.running_jobs, 0);
});

Deno.test("DashboardMetrics: robots online and offline from their last connection event", () => {
  const d = new DashboardProjection();
  d.apply(ev("robot-1", "robot.registered"));
  d.apply(ev("robot-1", "robot.connected"));
  d.apply(ev("robot-2", "robot.registered"));
  d.apply(ev("robot-2", "robot.connected"));
  d.apply(ev("robot-2", "robot.paused"));
  d.apply(ev("robot-3", "robot.registered"));
  d.apply(ev("robot-1", "robot.disconnected"));
  const m = d.metrics(NOW);
  assert.deepEqual([m.total_robots, m.online_robots, m.offline_robots], [3, 1, 2]);
});
