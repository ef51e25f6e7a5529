/**
 * Group commit, on both stores: the engine writes the commands of a tick in one append,
 * runs appends of disjoint streams side by side, keeps each stream's commands in order,
 * and a command that conflicts or that its machine refuses fails alone; the store writes
 * one stream version once whoever races for it, and an append sent twice at once (an
 * idempotent retry) once.
 */
import assert from "node:assert/strict";
import { DEFAULT_ENGINE_CONFIG, EngineCore, systemClock } from "../engine/mod.ts";
import { type SqlEventStore, WrongExpectedVersionError } from "../events/mod.ts";
import { BACKENDS } from "./_harness.ts";

const T = "2026-06-01T12:00:00.000Z";

const registered = (robotId: string) => ({
  type: "robot.registered",
  data: {
    robot_id: robotId,
    name: robotId,
    capabilities: [],
    tags: [],
    max_concurrent_jobs: 3,
    environment: null,
    version: "1.0",
    registered_at: T,
  },
});
const connected = { type: "robot.connected", data: { connected_at: T } };
const assigned = (jobId: string) => ({
  type: "robot.job_assigned",
  data: { job_id: jobId, lease_id: `lease-${jobId}` },
});
const released = (jobId: string) => ({
  type: "robot.job_released",
  data: { job_id: jobId, reason: "completed" },
});

/** A core with robots registered and connected through it (their states cached). */
async function coreWithRobots(store: SqlEventStore, robotIds: string[]): Promise<EngineCore> {
  const core = new EngineCore(store, systemClock, DEFAULT_ENGINE_CONFIG);
  for (const id of robotIds) {
    await core.commit([{ streamId: `robot-${id}`, events: [registered(id), connected] }]);
  }
  return core;
}

/** Types and job ids of a stream, in version order. */
async function streamOf(store: SqlEventStore, streamId: string): Promise<string[]> {
  const events = await store.readStream(streamId);
  assert.deepEqual(events.map((e) => e.streamVersion), events.map((_, i) => i + 1));
  return events.map((e) => `${e.type}${e.data.job_id ? ` ${e.data.job_id}` : ""}`);
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] the commands of one tick share one append; the one its machine refuses fails alone`, async () => {
    const { store, drop } = await backend.open();
    try {
      const core = await coreWithRobots(store, ["r1", "r2"]);
      const outcomes = await Promise.allSettled([
        core.commit([{ streamId: "robot-r1", events: [assigned("a")] }]),
        // a, b, c, d: one more than the robot's three slots.
        core.commit([{ streamId: "robot-r1", events: ["b", "c", "d"].map(assigned) }]),
        core.commit([{ streamId: "robot-r1", events: [assigned("e")] }]),
        core.commit([{ streamId: "robot-r2", events: [assigned("f")] }]),
      ]);
      assert.deepEqual(outcomes.map((o) => o.status), [
        "fulfilled",
        "rejected",
        "fulfilled",
        "fulfilled",
      ]);
      assert.equal((outcomes[1] as PromiseRejectedResult).reason.name, "InvalidTransitionError");
      assert.deepEqual(await streamOf(store, "robot-r1"), [
        "robot.registered",
        "robot.connected",
        "robot.job_assigned a",
        "robot.job_assigned e",
      ]);
      const written = await store.readChain({ limit: 100 });
      const tick = written.filter((e) => e.type === "robot.job_assigned");
      assert.equal(tick.length, 3);
      assert.equal(new Set(tick.map((e) => e.transactionId)).size, 1, "one transaction");
      assert.deepEqual(core.robots.get("r1")?.snapshot.context.current_jobs, ["a", "e"]);
    } finally {
      await store.close();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] a command that meets another writer's version is decided again and fails alone; the rest of its batch is written once`, async () => {
    const { store, drop } = await backend.open();
    try {
      const core = await coreWithRobots(store, ["r1", "r2"]);
      // Another writer fills r1's three slots behind the engine's back: its cached r1 is
      // now two versions old.
      await store.append([{
        streamId: "robot-r1",
        expectedVersion: 2,
        events: ["x", "y", "z"].map(assigned),
      }]);
      const outcomes = await Promise.allSettled([
        core.commit([{ streamId: "robot-r1", events: [assigned("a")] }]),
        core.commit([{ streamId: "robot-r2", events: [assigned("b")] }]),
      ]);
      assert.equal(outcomes[0].status, "rejected");
      assert.equal((outcomes[0] as PromiseRejectedResult).reason.name, "InvalidTransitionError");
      assert.equal(outcomes[1].status, "fulfilled");
      assert.deepEqual((await streamOf(store, "robot-r1")).slice(2), [
        "robot.job_assigned x",
        "robot.job_assigned y",
        "robot.job_assigned z",
      ]);
      assert.deepEqual(await streamOf(store, "robot-r2"), [
        "robot.registered",
        "robot.connected",
        "robot.job_assigned b",
      ]);
      // Re-decided on the stream as read: a release then an assignment go through.
      await core.commit([{ streamId: "robot-r1", events: [released("x"), assigned("a")] }]);
      assert.deepEqual(core.robots.get("r1")?.snapshot.context.current_jobs, ["y", "z", "a"]);
    } finally {
      await store.close();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] commands of one stream sent tick after tick, while appends are in flight, are written in the order sent`, async () => {
    const { store, drop } = await backend.open();
    try {
      const core = await coreWithRobots(store, ["r1", "r2", "r3"]);
      const commits: Promise<unknown>[] = [];
      const expected: Record<string, string[]> = { r1: [], r2: [], r3: [] };
      for (let i = 0; i < 30; i++) {
        const robotId = `r${(i % 3) + 1}`;
        const jobId = `j${Math.floor(i / 6)}`;
        // Each robot gets: assign jN, release jN, assign jN+1, …
        const event = Math.floor(i / 3) % 2 === 0 ? assigned(jobId) : released(jobId);
        expected[robotId].push(`${event.type} ${jobId}`);
        commits.push(core.commit([{ streamId: `robot-${robotId}`, events: [event] }]));
        await null; // the next command comes in a later tick
      }
      await Promise.all(commits);
      for (const robotId of ["r1", "r2", "r3"]) {
        assert.deepEqual(
          (await streamOf(store, `robot-${robotId}`)).slice(2),
          expected[robotId],
          robotId,
        );
      }
    } finally {
      await store.close();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] appends racing in one tick: one winner per stream version, the losers fail alone, a retry sent twice is written once`, async () => {
    const { store, drop } = await backend.open();
    try {
      const event = () => ({ type: "job.logged", data: { n: 1 } });
      const outcomes = await Promise.allSettled([
        store.append([{ streamId: "job-a", expectedVersion: 0, events: [event()] }]),
        store.append([{ streamId: "job-a", expectedVersion: 0, events: [event()] }]),
        store.append([{ streamId: "job-b", expectedVersion: 0, events: [event()] }]),
        store.append([{ streamId: "job-a", expectedVersion: 0, events: [event()] }]),
      ]);
      const onA = [outcomes[0], outcomes[1], outcomes[3]];
      assert.equal(onA.filter((o) => o.status === "fulfilled").length, 1);
      for (const o of onA) {
        if (o.status === "rejected") {
          assert.ok(o.reason instanceof WrongExpectedVersionError);
          assert.equal(o.reason.actual, 1);
        }
      }
      assert.equal(outcomes[2].status, "fulfilled", "another stream is not affected");

      // A retry of an append whose answer was lost, sent while the first is in flight.
      const retry = [{
        streamId: "job-a",
        expectedVersion: 1,
        events: [{ ...event(), eventId: crypto.randomUUID() }, {
          ...event(),
          eventId: crypto.randomUUID(),
        }],
      }];
      const [first, second] = await Promise.all([store.append(retry), store.append(retry)]);
      assert.deepEqual(
        first.events.map((e) => e.globalPosition),
        second.events.map((e) => e.globalPosition),
      );
      assert.deepEqual(first.versions, { "job-a": 3 });
      assert.deepEqual(second.versions, { "job-a": 3 });
      assert.equal((await store.readStream("job-a")).length, 3);
      // The next append chains from the head either answer reported.
      await store.append([{ streamId: "job-a", expectedVersion: 3, events: [event()] }]);
      assert.equal((await store.readStream("job-a")).length, 4);
    } finally {
      await store.close();
      await drop();
    }
  });
}
