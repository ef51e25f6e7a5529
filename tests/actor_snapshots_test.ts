/**
 * Snapshots are a cache: loading a long robot stream starts from its latest snapshot and
 * folds only the tail, with the same result as folding the whole stream; deleting every
 * snapshot, or changing the machine, changes no result.
 */
import assert from "node:assert/strict";
import { machineVersion, replay, robotMachine } from "../actors/mod.ts";
import {
  DEFAULT_ENGINE_CONFIG,
  EngineCore,
  loadActor,
  saveActorSnapshot,
  systemClock,
} from "../engine/mod.ts";

import type { NewEvent, SqlEventStore } from "../events/mod.ts";
import { BACKENDS } from "./_harness.ts";

const T = "2026-06-01T12:00:00.000Z";
const registered = {
  type: "robot.registered",
  data: {
    robot_id: "r1",
    name: "r1",
    capabilities: ["browser"],
    tags: [],
    max_concurrent_jobs: 3,
    environment: null,
    version: "1.0",
    registered_at: T,
  },
};

/** A robot stream of 2 + 2 × jobs events: registered, connected, then assigned/released. */
async function writeRobotStream(store: SqlEventStore, jobs: number): Promise<void> {
  await store.append([{
    streamId: "robot-r1",
    expectedVersion: 0,
    events: [registered, { type: "robot.connected", data: { connected_at: T } }],
  }]);
  let version = 2;
  for (let start = 0; start < jobs; start += 200) {
    const events: NewEvent[] = [];
    for (let i = start; i < Math.min(jobs, start + 200); i++) {
      events.push({ type: "robot.job_assigned", data: { job_id: `j${i}`, lease_id: `l${i}` } });
      // The last job stays assigned, so the final state is `busy`.
      if (i < jobs - 1) {
        events.push({ type: "robot.job_released", data: { job_id: `j${i}`, reason: "done" } });
      }
    }
    await store.append([{ streamId: "robot-r1", expectedVersion: version, events }]);
    version += events.length;
  }
}

const json = (value: unknown) => JSON.parse(JSON.stringify(value));

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a robot stream loads from its snapshot plus the tail, with the state of the whole fold; without snapshots the state is identical`, async () => {
    const { store, drop } = await backend.open();
    try {
      await writeRobotStream(store, 300);
      const events = await store.readStream("robot-r1");
      assert.equal(events.length, 601);

      const whole = await loadActor(store, robotMachine, "robot-r1");
      assert.equal(whole.snapshotVersion, 0);
      assert.equal(whole.eventsFolded, 601);
      assert.equal(whole.state.version, 601);
      assert.equal(whole.state.snapshot.value, "busy");
      assert.equal(whole.state.snapshot.context.jobs_assigned, 300);
      assert.deepEqual(whole.state.snapshot.context.current_jobs, ["j299"]);

      const at500 = replay(robotMachine, events.slice(0, 500));
      await saveActorSnapshot(store, robotMachine, "robot-r1", at500, events[499].eventId);
      const fromSnapshot = await loadActor(store, robotMachine, "robot-r1");
      assert.equal(fromSnapshot.snapshotVersion, 500);
      assert.equal(fromSnapshot.eventsFolded, 101);
      assert.deepEqual(json(fromSnapshot.state), json(whole.state));

      // An older snapshot never replaces a newer one.
      const at10 = replay(robotMachine, events.slice(0, 10));
      await saveActorSnapshot(store, robotMachine, "robot-r1", at10, events[9].eventId);
      assert.equal((await loadActor(store, robotMachine, "robot-r1")).snapshotVersion, 500);

      // The cache goes away: same state, from the whole stream.
      assert.equal(await store.snapshots.clear(), 1);
      const again = await loadActor(store, robotMachine, "robot-r1");
      assert.equal(again.snapshotVersion, 0);
      assert.deepEqual(json(again.state), json(whole.state));

      // A snapshot of another machine version is ignored, however wrong its state.
      const bogus = { value: "paused", context: { ...at500.snapshot.context, name: "x" } };
      await store.snapshots.save({
        streamId: "robot-r1",
        machineVersion: "0000000000000000",
        streamVersion: 500,
        eventId: events[499].eventId,
        state: { ...bogus, status: "active" },
      });
      const otherMachine = await loadActor(store, robotMachine, "robot-r1");
      assert.equal(otherMachine.snapshotVersion, 0);
      assert.deepEqual(json(otherMachine.state), json(whole.state));

      // A snapshot that does not match the log (another event at its version) is ignored.
      await store.snapshots.save({
        streamId: "robot-r1",
        machineVersion: machineVersion(robotMachine),
        streamVersion: 500,
        eventId: events[498].eventId,
        state: { ...bogus, status: "active" },
      });
      const mismatch = await loadActor(store, robotMachine, "robot-r1");
      assert.equal(mismatch.snapshotVersion, 0);
      assert.deepEqual(json(mismatch.state), json(whole.state));
    } finally {
      await store.close();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] the engine snapshots streams its appends carry past snapshotEvery, and a fresh engine decides from the snapshot`, async () => {
    const { store, drop } = await backend.open();
    const config = { ...DEFAULT_ENGINE_CONFIG, snapshotEvery: 4 };
    try {
      const core = new EngineCore(store, systemClock, config);
      const robot = (events: { type: string; data: Record<string, unknown> }[]) =>
        core.commit([{ streamId: "robot-r1", events }]);
      await robot([registered, { type: "robot.connected", data: { connected_at: T } }]);
      await robot([{ type: "robot.job_assigned", data: { job_id: "a", lease_id: "la" } }]);
      assert.equal(await store.snapshots.clear(), 0);
      await robot([{ type: "robot.job_assigned", data: { job_id: "b", lease_id: "lb" } }]);
      await core.snapshotsWritten();
      const snapshot = await store.snapshots.load("robot-r1", machineVersion(robotMachine));
      assert.equal(snapshot?.streamVersion, 4);

      const fresh = new EngineCore(store, systemClock, config);
      await fresh.commit([{
        streamId: "robot-r1",
        events: [{ type: "robot.job_released", data: { job_id: "a", reason: "done" } }],
      }]);
      const state = fresh.robots.get("r1")!;
      assert.equal(state.version, 5);
      assert.deepEqual(state.snapshot.context.current_jobs, ["b"]);
      await store.snapshots.clear();
      const whole = await loadActor(store, robotMachine, "robot-r1");
      assert.deepEqual(json(state), json(whole.state));
      // Beyond max_concurrent_jobs (3) the machine, decided from the snapshot, refuses.
      await fresh.commit([{
        streamId: "robot-r1",
        events: [
          { type: "robot.job_assigned", data: { job_id: "c", lease_id: "lc" } },
          { type: "robot.job_assigned", data: { job_id: "d", lease_id: "ld" } },
        ],
      }]);
      await assert.rejects(
        fresh.commit([{
          streamId: "robot-r1",
          events: [{ type: "robot.job_assigned", data: { job_id: "e", lease_id: "le" } }],
        }]),
        { name: "InvalidTransitionError" },
      );
      await fresh.snapshotsWritten();
    } finally {
      await store.close();
      await drop();
    }
  });
}
