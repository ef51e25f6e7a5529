import assert from "node:assert/strict";
import { type AnyStateMachine, assign, initialTransition, setup, transition } from "xstate";
import {
  compileMachine,
  type FoldedSnapshot,
  jobMachine,
  type MachineEvent,
  robotMachine,
} from "./mod.ts";

/** Mulberry32: a small seeded PRNG, so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T = "2026-01-01T00:00:00.000Z";
const result = {
  status: "completed",
  outputs: {},
  logs: [],
  execution_time: 1,
  node_results: {},
  error: null,
};

/** Random job events over small pools of values, so that every guard goes both ways. */
function jobEvent(r: () => number): MachineEvent {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const lease = pick(["L1", "L2", null]);
  const robot = pick(["r1", "r2"]);
  const events: MachineEvent[] = [
    {
      type: "job.submitted",
      job_id: pick(["j1", "j2"]),
      workflow: { workflow_id: "w", name: "w", version: "1", content: {} },
      variables: {},
      priority: pick([0, 1, 2, 3]),
      timeout: 30,
      created_at: T,
      ...(r() < 0.5
        ? { retry: { max_retries: 2, initial_delay: 1, max_delay: 4, backoff_factor: 2 } }
        : {}),
    },
    { type: "job.queued", queued_at: T, reason: "submitted" },
    {
      type: "job.dispatched",
      robot_id: robot,
      lease_id: lease ?? "L1",
      attempt: 1,
      dispatched_at: T,
      deadline: T,
    },
    { type: "job.rejected", robot_id: robot, lease_id: lease, reason: "busy" },
    { type: "job.started", lease_id: lease, started_at: T },
    { type: "job.progressed", lease_id: lease, progress: pick([10, 50]), current_node: "n" },
    {
      type: "job.logged",
      lease_id: lease,
      entries: [{ timestamp: T, level: "info", message: "m" }],
    },
    { type: "job.cancel_requested", requested_at: T, reason: "asked" },
    { type: "job.completed", lease_id: lease, completed_at: T, result },
    { type: "job.failed", lease_id: lease, completed_at: T, error: "boom", result: null },
    { type: "job.cancelled", cancelled_at: T, reason: "asked", ...(r() < 0.5 ? { result } : {}) },
    { type: "job.timed_out", timed_out_at: T, lease_id: lease },
    {
      type: "job.retry_scheduled",
      lease_id: lease,
      failed_at: T,
      error: "e",
      result: null,
      retry: pick([1, 2, 3]),
      retry_at: T,
    },
    { type: "job.unknown_thing" },
  ];
  // Ending events are drawn less often, so that sequences live long enough to go around.
  const ending = new Set(["job.completed", "job.failed", "job.cancelled", "job.timed_out"]);
  return r() < 0.75 ? pick(events.filter((e) => !ending.has(e.type))) : pick(events);
}

function robotEvent(r: () => number): MachineEvent {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const job = pick(["j1", "j2", "j3"]);
  const events: MachineEvent[] = [
    {
      type: "robot.registered",
      robot_id: "r1",
      name: "r1",
      capabilities: [],
      tags: [],
      max_concurrent_jobs: pick([1, 2]),
      environment: null,
      version: null,
      registered_at: T,
    },
    { type: "robot.connected", connected_at: T },
    { type: "robot.disconnected", disconnected_at: T, reason: "gone" },
    { type: "robot.paused", paused_at: T, reason: null },
    { type: "robot.resumed", resumed_at: T },
    { type: "robot.job_assigned", job_id: job, lease_id: "L" },
    { type: "robot.job_released", job_id: job, reason: "done" },
  ];
  return pick(events);
}

function plain(s: { value: unknown; context: unknown; status: string }): FoldedSnapshot<unknown> {
  return { value: s.value as string, context: s.context, status: s.status as "active" | "done" };
}

function compareOn(
  machine: AnyStateMachine,
  gen: (r: () => number) => MachineEvent,
  sequences: number,
  length: number,
): number {
  const fast = compileMachine(machine);
  const taken = new Set<string>();
  for (let seed = 1; seed <= sequences; seed++) {
    const r = prng(seed);
    let [reference] = initialTransition(machine);
    let mine = fast.initial as FoldedSnapshot<unknown>;
    assert.deepEqual(mine, plain(reference));
    for (let i = 0; i < length; i++) {
      const event = gen(r);
      const [next] = transition(machine, reference, event as never);
      const stepped = fast.step(mine, event);
      if (stepped) taken.add(`${mine.value} ${event.type} -> ${stepped.value}`);
      // Taking no transition is exactly xstate returning a snapshot equal to the old one.
      if (!stepped) assert.deepEqual(plain(next), plain(reference), `seed ${seed} step ${i}`);
      reference = next;
      mine = stepped ?? mine;
      assert.deepEqual(mine, plain(reference), `seed ${seed} step ${i}: ${event.type}`);
    }
  }
  return taken.size;
}

Deno.test("the compiled job machine takes exactly xstate's transitions on 400 random sequences", () => {
  const taken = compareOn(jobMachine, jobEvent, 400, 40);
  // Every (state, event, next state) the machine defines: 22 in `job_machine.ts`.
  assert.ok(taken >= 22, `only ${taken} distinct transitions were exercised`);
});

Deno.test("the compiled robot machine takes exactly xstate's transitions on 400 random sequences", () => {
  const taken = compareOn(robotMachine, robotEvent, 400, 60);
  // Every reachable (state, event, next state): 19 (`robot.job_released` from `online`,
  // which never holds jobs, is not reachable).
  assert.ok(taken >= 19, `only ${taken} distinct transitions were exercised`);
});

Deno.test("compileMachine() refuses machines with features it does not implement", () => {
  const withEntry = setup({}).createMachine({
    initial: "a",
    states: { a: { entry: assign({}) } },
  });
  assert.throws(() => compileMachine(withEntry), TypeError);
  const nested = setup({}).createMachine({
    initial: "a",
    states: { a: { initial: "b", states: { b: {} } } },
  });
  assert.throws(() => compileMachine(nested), TypeError);
  const delayed = setup({}).createMachine({
    initial: "a",
    states: { a: { after: { 100: "b" } }, b: {} },
  });
  assert.throws(() => compileMachine(delayed), TypeError);
  const wildcard = setup({}).createMachine({
    initial: "a",
    states: { a: { on: { "job.*": "b" } }, b: {} },
  });
  assert.throws(() => compileMachine(wildcard), TypeError);
});

Deno.test("the compiled initial snapshot is frozen, so sharing it between actors is safe", () => {
  const { initial } = compileMachine(jobMachine);
  assert.ok(Object.isFrozen(initial.context));
  assert.throws(() => {
    (initial.context.rejected_by as string[]).push("r1");
  }, TypeError);
});
