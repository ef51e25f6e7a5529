import assert from "node:assert/strict";
import type { RecordedEvent } from "../events/mod.ts";
import { checkJobEvents, type JobInvariantRule } from "./job_invariants.ts";

/** Builds a log from `[streamId, type, data]` triples, versions counted per stream. */
function log(...entries: [string, string, Record<string, unknown>?][]): RecordedEvent[] {
  const versions = new Map<string, number>();
  return entries.map(([streamId, type, data = {}], i) => {
    const v = (versions.get(streamId) ?? 0) + 1;
    versions.set(streamId, v);
    return {
      globalPosition: i + 1,
      streamId,
      streamVersion: v,
      eventId: crypto.randomUUID(),
      type,
      data,
      metadata: {},
      recordedAt: new Date(0),
    };
  });
}

const submitted = (id: string): [string, string, Record<string, unknown>] => [
  `job-${id}`,
  "job.submitted",
  { job_id: id },
];
const dispatched = (id: string, lease: string, attempt: number, robot = "r1") =>
  [`job-${id}`, "job.dispatched", { lease_id: lease, attempt, robot_id: robot }] as [
    string,
    string,
    Record<string, unknown>,
  ];
const ev = (id: string, type: string, data: Record<string, unknown> = {}) =>
  [`job-${id}`, type, data] as [string, string, Record<string, unknown>];

/** A clean life: dispatched, robot lost, requeued, dispatched again, completed. */
const CLEAN = log(
  ["robot-r1", "robot.registered", { max_concurrent_jobs: 1 }],
  submitted("a"),
  ev("a", "job.queued"),
  dispatched("a", "L1", 1),
  ["robot-r1", "robot.job_assigned", { job_id: "a", lease_id: "L1" }],
  ev("a", "job.started", { lease_id: "L1" }),
  ev("a", "job.queued", { reason: "robot_lost" }),
  ["robot-r1", "robot.job_released", { job_id: "a" }],
  dispatched("a", "L2", 2),
  ["robot-r1", "robot.job_assigned", { job_id: "a", lease_id: "L2" }],
  ev("a", "job.started", { lease_id: "L2" }),
  ev("a", "job.progressed", { lease_id: "L2" }),
  ev("a", "job.completed", { lease_id: "L2" }),
  ["robot-r1", "robot.job_released", { job_id: "a" }],
);

Deno.test("checkJobEvents() accepts a job that was requeued once and completed", () => {
  const report = checkJobEvents(CLEAN, { accepted: ["a"] });
  assert.deepEqual(report.violations, []);
  assert.equal(report.ok, true);
  assert.equal(report.jobs, 1);
  assert.equal(report.events, CLEAN.length);
  assert.deepEqual(report.outcomes, { "job.completed": 1 });
});

const CASES: { name: string; rule: JobInvariantRule; events: RecordedEvent[]; at?: number }[] = [
  {
    name: "an accepted job missing from the log",
    rule: "lost_submission",
    events: log(submitted("other"), ev("other", "job.queued"), ev("other", "job.cancelled")),
  },
  {
    name: "two terminal events",
    rule: "duplicate_terminal",
    events: log(
      submitted("a"),
      ev("a", "job.queued"),
      dispatched("a", "L1", 1),
      ev("a", "job.completed", { lease_id: "L1" }),
      ev("a", "job.failed", { lease_id: "L1" }),
    ),
    at: 5,
  },
  {
    name: "an event after the terminal one",
    rule: "after_terminal",
    events: log(
      submitted("a"),
      ev("a", "job.queued"),
      ev("a", "job.cancelled"),
      ev("a", "job.queued"),
    ),
    at: 4,
  },
  {
    name: "a second lease while the first is active",
    rule: "overlapping_leases",
    events: log(
      submitted("a"),
      ev("a", "job.queued"),
      dispatched("a", "L1", 1),
      dispatched("a", "L2", 2, "r2"),
      ev("a", "job.completed", { lease_id: "L2" }),
    ),
    at: 4,
  },
  {
    name: "a result recorded for a lease that was revoked",
    rule: "stale_lease",
    events: log(
      submitted("a"),
      ev("a", "job.queued"),
      dispatched("a", "L1", 1),
      ev("a", "job.queued", { reason: "robot_lost" }),
      ev("a", "job.completed", { lease_id: "L1" }),
    ),
    at: 5,
  },
  {
    name: "attempt numbers that skip",
    rule: "bad_attempt",
    events: log(
      submitted("a"),
      ev("a", "job.queued"),
      dispatched("a", "L1", 2),
      ev("a", "job.completed", { lease_id: "L1" }),
    ),
    at: 3,
  },
  {
    name: "a job that never ended",
    rule: "not_terminal",
    events: log(submitted("a"), ev("a", "job.queued"), dispatched("a", "L1", 1)),
  },
  {
    name: "a robot holding more jobs than its slots",
    rule: "robot_overcommitted",
    events: log(
      ["robot-r1", "robot.registered", { max_concurrent_jobs: 1 }],
      ["robot-r1", "robot.job_assigned", { job_id: "a" }],
      ["robot-r1", "robot.job_assigned", { job_id: "b" }],
    ),
    at: 3,
  },
  {
    name: "a robot still holding a job that ended",
    rule: "robot_holds_ended",
    events: log(
      submitted("a"),
      ev("a", "job.queued"),
      dispatched("a", "L1", 1),
      ["robot-r1", "robot.job_assigned", { job_id: "a" }],
      ev("a", "job.completed", { lease_id: "L1" }),
    ),
  },
  {
    name: "a job submitted twice in one stream",
    rule: "duplicate_submit",
    events: log(submitted("a"), submitted("a"), ev("a", "job.queued"), ev("a", "job.cancelled")),
    at: 2,
  },
];

for (const c of CASES) {
  Deno.test(`checkJobEvents() reports ${c.rule}: ${c.name}`, () => {
    const accepted = c.rule === "lost_submission" ? ["a"] : [];
    const report = checkJobEvents(c.events, { accepted });
    assert.equal(report.ok, false);
    assert.deepEqual(report.violations.map((v) => v.rule), [c.rule]);
    if (c.at !== undefined) assert.equal(report.violations[0].streamVersion, c.at);
  });
}

Deno.test("checkJobEvents() with requireTerminal false lets open jobs be", () => {
  const events = log(submitted("a"), ev("a", "job.queued"), dispatched("a", "L1", 1));
  const report = checkJobEvents(events, { requireTerminal: false });
  assert.deepEqual(report.violations, []);
  assert.deepEqual(report.outcomes, { open: 1 });
});
