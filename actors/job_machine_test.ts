import assert from "node:assert/strict";
import { decide, InvalidTransitionError, jobMachine, replay } from "./mod.ts";

const T = "2026-01-01T00:00:00.000Z";
const submitted = {
  type: "job.submitted",
  data: {
    job_id: "j1",
    workflow: { workflow_id: "w", name: "w", version: "1", content: {} },
    variables: {},
    priority: 2,
    timeout: 30,
    created_at: T,
  },
};
const queued = { type: "job.queued", data: { queued_at: T, reason: "submitted" } };
const dispatched = {
  type: "job.dispatched",
  data: { robot_id: "r1", lease_id: "L1", attempt: 1, dispatched_at: T, deadline: T },
};
const started = { type: "job.started", data: { lease_id: "L1", started_at: T } };
const result = {
  status: "completed",
  outputs: {},
  logs: [],
  execution_time: 1,
  node_results: {},
  error: null,
};
const completed = { type: "job.completed", data: { lease_id: "L1", completed_at: T, result } };

function stream(...events: { type: string; data: Record<string, unknown> }[]) {
  return replay(jobMachine, events.map((e, i) => ({ ...e, streamVersion: i + 1 })));
}

Deno.test("job replay follows pending → queued → dispatched → running → completed", () => {
  const states = [
    [stream(submitted), "pending"],
    [stream(submitted, queued), "queued"],
    [stream(submitted, queued, dispatched), "dispatched"],
    [stream(submitted, queued, dispatched, started), "running"],
    [stream(submitted, queued, dispatched, started, completed), "completed"],
  ] as const;
  for (const [state, value] of states) assert.equal(state.snapshot.value, value);
  const done = states[4][0];
  assert.equal(done.version, 5);
  assert.equal(done.snapshot.context.robot_id, "r1");
  assert.equal(done.snapshot.context.progress, 100);
  assert.deepEqual(done.snapshot.context.result, result);
});

const rejected: [
  string,
  { type: string; data: Record<string, unknown> }[],
  Record<string, unknown> & { type: string },
][] = [
  ["a queued job cannot complete", [submitted, queued], {
    ...completed.data,
    type: "job.completed",
  }],
  ["a queued job cannot start", [submitted, queued], { ...started.data, type: "job.started" }],
  ["a completed job cannot be cancelled", [submitted, queued, dispatched, started, completed], {
    type: "job.cancelled",
    cancelled_at: T,
    reason: "x",
  }],
  ["a job cannot be submitted twice", [submitted], { ...submitted.data, type: "job.submitted" }],
  ["a start with another lease is refused", [submitted, queued, dispatched], {
    type: "job.started",
    lease_id: "OLD",
    started_at: T,
  }],
  ["a result with a stale lease is refused", [submitted, queued, dispatched, started], {
    ...completed.data,
    lease_id: "OLD",
    type: "job.completed",
  }],
  ["a timed-out job cannot complete", [submitted, queued, dispatched, started, {
    type: "job.timed_out",
    data: { timed_out_at: T, lease_id: "L1" },
  }], { ...completed.data, type: "job.completed" }],
];

for (const [name, history, event] of rejected) {
  Deno.test(`decide() refuses: ${name}`, () => {
    const state = stream(...history);
    assert.throws(() => decide(jobMachine, "job-j1", state, event), (e: unknown) => {
      assert.ok(e instanceof InvalidTransitionError);
      assert.equal(e.streamId, "job-j1");
      assert.equal(e.eventType, event.type);
      return true;
    });
  });
}

Deno.test("a lost robot's job goes back to queued and can be dispatched again", () => {
  const state = stream(submitted, queued, dispatched, started, {
    type: "job.queued",
    data: { queued_at: T, reason: "robot_lost" },
  });
  assert.equal(state.snapshot.value, "queued");
  assert.equal(state.snapshot.context.lease_id, null);
  assert.equal(state.snapshot.context.attempt, 1);
  const next = decide(jobMachine, "job-j1", state, {
    ...dispatched.data,
    lease_id: "L2",
    attempt: 2,
    type: "job.dispatched",
  });
  assert.equal(next.value, "dispatched");
  assert.equal(next.context.lease_id, "L2");
});

Deno.test("a rejected job is queued again and remembers who rejected it", () => {
  const state = stream(submitted, queued, dispatched, {
    type: "job.rejected",
    data: { robot_id: "r1", lease_id: "L1", reason: "busy" },
  });
  assert.equal(state.snapshot.value, "queued");
  assert.deepEqual(state.snapshot.context.rejected_by, ["r1"]);
});
