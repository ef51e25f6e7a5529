import assert from "node:assert/strict";
import type { RecordedEvent } from "../events/mod.ts";
import { type AlertConfig, DEFAULT_ALERT_CONFIG } from "./alert_config.ts";
import { AlertConditions, type ConditionChange, eventTime } from "./alert_conditions.ts";

const T0 = Date.UTC(2026, 2, 10, 12);
let position = 0;
function ev(stream: string, type: string, data: Record<string, unknown> = {}): RecordedEvent {
  position++;
  return {
    globalPosition: position,
    streamId: stream,
    streamVersion: position,
    eventId: `00000000-0000-4000-8000-${String(position).padStart(12, "0")}`,
    type,
    data,
    metadata: {},
    recordedAt: new Date(T0),
  };
}
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const config = (over: Partial<AlertConfig>): AlertConfig => ({ ...DEFAULT_ALERT_CONFIG, ...over });
const summary = (changes: readonly ConditionChange[]) =>
  changes.map((c) =>
    c.change === "started"
      ? ["started", c.instance.kind, c.instance.alert_id, c.instance.raise_at - T0]
      : ["ended", c.kind, c.alert_id, c.reason]
  );

Deno.test("robot_disconnected starts at robot.disconnected, is due after the delay, ends at robot.connected", () => {
  const c = new AlertConditions(config({ robotOfflineAfter: 60 }));
  assert.deepEqual(c.apply(ev("robot-r1", "robot.connected", { connected_at: at(0) })), []);
  const down = ev("robot-r1", "robot.disconnected", {
    disconnected_at: at(5),
    reason: "heartbeat_timeout",
  });
  const started = c.apply(down);
  const id = `robot_disconnected-${down.eventId}`;
  assert.deepEqual(summary(started), [["started", "robot_disconnected", id, 65_000]]);
  const instance = (started[0] as { instance: { evidence: unknown; subject: unknown } }).instance;
  assert.deepEqual(instance.subject, { robot_id: "r1" });
  assert.deepEqual(instance.evidence, {
    robot_id: "r1",
    reason: "heartbeat_timeout",
    disconnected_at: at(5),
    offline_after_seconds: 60,
  });
  assert.ok(c.holds(id));
  assert.deepEqual(summary(c.apply(ev("robot-r1", "robot.connected", { connected_at: at(30) }))), [
    ["ended", "robot_disconnected", id, "robot reconnected"],
  ]);
  assert.equal(c.holds(id), false);
});

Deno.test("job_timeout starts at job.timed_out and at a retried missed deadline, not at other failures", () => {
  const c = new AlertConditions(config({}));
  const final = ev("job-j1", "job.timed_out", { timed_out_at: at(1), lease_id: "L1" });
  const retried = ev("job-j2", "job.retry_scheduled", {
    failed_at: at(2),
    error: "Job exceeded its timeout",
    error_type: "job_timeout",
    retry: 1,
    retry_at: at(4),
  });
  const robotError = ev("job-j3", "job.retry_scheduled", {
    failed_at: at(3),
    error: "Element not found",
    error_type: "ElementNotFoundError",
    retry: 1,
    retry_at: at(5),
  });
  // Written before error_type existed: recognised by its message.
  const legacy = ev("job-j4", "job.retry_scheduled", {
    failed_at: at(3),
    error: "Job exceeded its timeout",
    retry: 1,
    retry_at: at(5),
  });
  const changes = [final, retried, robotError, legacy].flatMap((e) => c.apply(e));
  assert.deepEqual(summary(changes).filter((s) => s[1] === "job_timeout"), [
    ["started", "job_timeout", `job_timeout-${final.eventId}`, 1000],
    ["started", "job_timeout", `job_timeout-${retried.eventId}`, 2000],
    ["started", "job_timeout", `job_timeout-${legacy.eventId}`, 3000],
  ]);
  assert.equal(c.holds(`job_timeout-${final.eventId}`), false, "an event, not a state");
});

Deno.test("high_error_rate: raised at the job end that reaches the threshold over the window, ended below it", () => {
  const c = new AlertConditions(
    config({
      errorRateThreshold: 0.5,
      errorRateWindow: 60,
      errorRateMinJobs: 4,
      kinds: ["high_error_rate"],
    }),
  );
  const end = (job: string, ok: boolean, s: number) =>
    c.apply(
      ok
        ? ev(`job-${job}`, "job.completed", { completed_at: at(s) })
        : ev(`job-${job}`, "job.failed", { completed_at: at(s), error: "x" }),
    );
  assert.deepEqual(end("a", false, 0), [], "1 job: under min_jobs");
  assert.deepEqual(end("b", false, 1), []);
  assert.deepEqual(end("c", true, 2), []);
  const cross = end("d", true, 3); // 2 of 4 = 0.5: reaches the threshold
  assert.equal(cross.length, 1);
  const instance = (cross[0] as Extract<ConditionChange, { change: "started" }>).instance;
  assert.equal(instance.kind, "high_error_rate");
  assert.equal(instance.severity, "critical");
  assert.deepEqual(
    [instance.evidence.jobs_ended, instance.evidence.failed, instance.evidence.error_rate],
    [4, 2, 0.5],
  );
  assert.deepEqual(end("e", false, 4), [], "still above: no second alert");
  // The window slides: at 62 s the first failure (0 s) and the second (1 s) are out of it.
  assert.equal(c.errorRateHolds("default", T0 + 60_500), true);
  assert.equal(c.errorRateHolds("default", T0 + 61_500), false, "b left: 1 of 3");
  assert.equal(c.nextWindowChange("default", T0 + 10_000), T0 + 60_001);
  assert.deepEqual(end("f", true, 5), [], "3 of 6 = 0.5: still at the threshold");
  const below = end("g", true, 6); // 3 of 7 within 60 s
  assert.deepEqual(summary(below), [
    ["ended", "high_error_rate", instance.alert_id, "error rate below the threshold"],
  ]);
  assert.deepEqual(c.errorRateInstances(), []);
});

Deno.test("high_error_rate: an alert.resolved of the open instance (the window slid) ends it in every fold", () => {
  const c = new AlertConditions(
    config({ errorRateThreshold: 1, errorRateMinJobs: 1, kinds: ["high_error_rate"] }),
  );
  const [start] = c.apply(ev("job-a", "job.failed", { completed_at: at(0) }));
  assert.equal(start.change, "started");
  const id = (start as Extract<ConditionChange, { change: "started" }>).instance.alert_id;
  c.apply(ev(`alert-${id}`, "alert.resolved", { resolved_at: at(400) }));
  assert.deepEqual(c.errorRateInstances(), []);
  const [again] = c.apply(ev("job-b", "job.failed", { completed_at: at(401) }));
  assert.equal(again.change, "started", "a new failure starts a new instance");
});

Deno.test("queue_backlog: starts when the depth goes above the threshold, due after the duration, ends at or below it", () => {
  const c = new AlertConditions(
    config({ queueDepth: 2, queueDuration: 30, kinds: ["queue_backlog"] }),
  );
  const queue = (job: string, s: number) =>
    c.apply(ev(`job-${job}`, "job.queued", { queued_at: at(s) }));
  assert.deepEqual(queue("a", 0), []);
  assert.deepEqual(queue("b", 1), []);
  const third = queue("c", 2);
  assert.deepEqual(summary(third).map((s) => s.slice(0, 2).concat(s[3])), [[
    "started",
    "queue_backlog",
    32_000,
  ]]);
  const id = (third[0] as Extract<ConditionChange, { change: "started" }>).instance.alert_id;
  assert.deepEqual(queue("d", 3), []);
  assert.equal(c.backlogMaxDepth("default"), 4);
  assert.deepEqual(c.apply(ev("job-a", "job.dispatched", { dispatched_at: at(4) })), []);
  assert.deepEqual(
    summary(c.apply(ev("job-b", "job.cancelled", { cancelled_at: at(5) }))),
    [["ended", "queue_backlog", id, "queue depth back to the threshold or below"]],
  );
  assert.equal(c.queueDepth("default"), 2);
});

Deno.test("alerts belong to the org of what they are about; error rate and queue are per org", () => {
  const c = new AlertConditions(
    config({
      kinds: ["robot_disconnected", "job_timeout", "high_error_rate", "queue_backlog"],
      errorRateThreshold: 0.5,
      errorRateMinJobs: 2,
      queueDepth: 1,
    }),
  );
  /** The first event of a stream (version 1) names its org, as the engine writes it. */
  const first = (stream: string, type: string, data: Record<string, unknown>) => ({
    ...ev(stream, type, data),
    streamVersion: 1,
  });
  const started = (changes: readonly ConditionChange[]) =>
    changes.map((x) => {
      const i = (x as Extract<ConditionChange, { change: "started" }>).instance;
      return [i.kind, i.org_id];
    });
  c.apply(first("robot-ra", "robot.registered", { org_id: "acme" }));
  c.apply(first("robot-rd", "robot.registered", {}));
  assert.deepEqual(
    started(c.apply(ev("robot-ra", "robot.disconnected", { disconnected_at: at(0) }))),
    [["robot_disconnected", "acme"]],
  );
  assert.deepEqual(
    started(c.apply(ev("robot-rd", "robot.disconnected", { disconnected_at: at(0) }))),
    [["robot_disconnected", "default"]],
  );
  // Two jobs of acme queued, one of globex: only acme's queue is above 1.
  c.apply(first("job-a1", "job.submitted", { org_id: "acme" }));
  c.apply(first("job-a2", "job.submitted", { org_id: "acme" }));
  c.apply(first("job-g1", "job.submitted", { org_id: "globex" }));
  assert.deepEqual(c.apply(ev("job-a1", "job.queued", { queued_at: at(1) })), []);
  assert.deepEqual(c.apply(ev("job-g1", "job.queued", { queued_at: at(1) })), []);
  assert.deepEqual(started(c.apply(ev("job-a2", "job.queued", { queued_at: at(1) }))), [
    ["queue_backlog", "acme"],
  ]);
  assert.deepEqual([c.queueDepth("acme"), c.queueDepth("globex")], [2, 1]);
  // One failure in each org: 1 of 1 is under min_jobs in each, though 2 of 2 fleet-wide.
  assert.deepEqual(
    started(c.apply(ev("job-g1", "job.timed_out", { timed_out_at: at(2) }))),
    [["job_timeout", "globex"]],
  );
  // acme's queue goes back to 1 (its backlog ends); 1 job ended in acme: under min_jobs.
  assert.deepEqual(
    c.apply(ev("job-a1", "job.failed", { failed_at: at(2) })).map((x) =>
      x.change === "ended" ? `ended ${x.kind}` : `started ${x.instance.kind}`
    ),
    ["ended queue_backlog"],
  );
  assert.deepEqual(c.errorRateInstances(), []);
  assert.deepEqual(started(c.apply(ev("job-a2", "job.failed", { failed_at: at(3) }))), [[
    "high_error_rate",
    "acme",
  ]]);
  assert.deepEqual(c.errorRateInstances().map((i) => i.org_id), ["acme"]);
  assert.equal(c.errorRateHolds("globex", T0 + 3000), false);
});

Deno.test("a kind left out of ALERTS is not evaluated", () => {
  const c = new AlertConditions(config({ kinds: ["queue_backlog"] }));
  assert.deepEqual(c.apply(ev("robot-r", "robot.disconnected", { disconnected_at: at(0) })), []);
  assert.deepEqual(c.apply(ev("job-j", "job.timed_out", { timed_out_at: at(0) })), []);
});

Deno.test("eventTime() reads the engine's instants exactly and falls back to Date.parse and recorded_at", () => {
  const e = (data: Record<string, unknown>) => ev("job-t", "job.completed", data);
  for (
    const s of ["2026-06-01T12:34:56.789Z", "1999-12-31T23:59:59.999Z", "2026-02-28T00:00:00.000Z"]
  ) {
    assert.equal(eventTime(e({ completed_at: s })), Date.parse(s), s);
  }
  assert.equal(
    eventTime(e({ completed_at: "2026-06-01T12:00:00+02:00" })),
    Date.UTC(2026, 5, 1, 10),
  );
  assert.equal(
    eventTime(e({ completed_at: "2026-06-01T1x:00:00.000Z" })),
    T0,
    "unreadable: recorded_at",
  );
  assert.equal(eventTime(e({})), T0);
});
