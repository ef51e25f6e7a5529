import assert from "node:assert/strict";
import { decide, InvalidTransitionError, replay, robotMachine } from "./mod.ts";

const T = "2026-01-01T00:00:00.000Z";
const registered = {
  type: "robot.registered",
  data: {
    robot_id: "r1",
    name: "R1",
    capabilities: ["a"],
    tags: [],
    max_concurrent_jobs: 2,
    environment: null,
    version: null,
    registered_at: T,
  },
};
const connected = { type: "robot.connected", data: { connected_at: T } };
const assign = (job: string) => ({
  type: "robot.job_assigned",
  data: { job_id: job, lease_id: `L-${job}` },
});
const release = (job: string) => ({
  type: "robot.job_released",
  data: { job_id: job, reason: "completed" },
});

function stream(...events: { type: string; data: Record<string, unknown> }[]) {
  return replay(robotMachine, events.map((e, i) => ({ ...e, streamVersion: i + 1 })));
}

Deno.test("robot goes offline → online → busy → online as jobs come and go", () => {
  assert.equal(stream(registered).snapshot.value, "offline");
  assert.equal(stream(registered, connected).snapshot.value, "online");
  const busy = stream(registered, connected, assign("j1"), assign("j2"));
  assert.equal(busy.snapshot.value, "busy");
  assert.deepEqual(busy.snapshot.context.current_jobs, ["j1", "j2"]);
  const one = stream(registered, connected, assign("j1"), assign("j2"), release("j1"));
  assert.equal(one.snapshot.value, "busy");
  const idle = stream(
    registered,
    connected,
    assign("j1"),
    assign("j2"),
    release("j1"),
    release("j2"),
  );
  assert.equal(idle.snapshot.value, "online");
  assert.equal(idle.snapshot.context.jobs_assigned, 2);
});

Deno.test("decide() refuses a job beyond max_concurrent_jobs", () => {
  const full = stream(registered, connected, assign("j1"), assign("j2"));
  assert.throws(
    () =>
      decide(robotMachine, "robot-r1", full, {
        type: "robot.job_assigned",
        job_id: "j3",
        lease_id: "x",
      }),
    InvalidTransitionError,
  );
});

Deno.test("decide() refuses jobs for offline and paused robots", () => {
  assert.throws(
    () =>
      decide(robotMachine, "robot-r1", stream(registered), {
        ...assign("j1").data,
        type: "robot.job_assigned",
      }),
    InvalidTransitionError,
  );
  const paused = stream(registered, connected, { type: "robot.paused", data: { paused_at: T } });
  assert.equal(paused.snapshot.value, "paused");
  assert.throws(
    () =>
      decide(robotMachine, "robot-r1", paused, {
        ...assign("j1").data,
        type: "robot.job_assigned",
      }),
    InvalidTransitionError,
  );
  const resumed = decide(robotMachine, "robot-r1", paused, {
    type: "robot.resumed",
    resumed_at: T,
  });
  assert.equal(resumed.value, "online");
});

Deno.test("an unregistered robot cannot connect", () => {
  assert.throws(
    () => decide(robotMachine, "robot-r9", stream(), { type: "robot.connected", connected_at: T }),
    InvalidTransitionError,
  );
});

Deno.test("a disconnected robot is offline with the reason kept", () => {
  const s = stream(registered, connected, {
    type: "robot.disconnected",
    data: { disconnected_at: T, reason: "heartbeat_timeout" },
  });
  assert.equal(s.snapshot.value, "offline");
  assert.equal(s.snapshot.context.disconnect_reason, "heartbeat_timeout");
});
