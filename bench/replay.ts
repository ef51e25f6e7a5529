/**
 * Replay benchmark: `deno run -A bench/replay.ts [--jobs N]`.
 *
 * Writes a log of N jobs (each submitted, queued, dispatched, started and completed, with
 * a robot's assignment and release: 7 events per job) in batches, on PGlite and on the
 * local PostgreSQL, then folds the whole log into fresh read models with `replayLog` (what
 * start-up, `deno task rebuild` and `deno task replay` do) and prints events/s, beside the
 * raw `readAll` throughput of the same store as the peer figure.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { replayLog } from "../engine/mod.ts";
import type { NewEvent, SqlEventStore, StreamAppend } from "../events/mod.ts";
import { BACKENDS } from "../tests/_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { jobs: { type: "string", default: "15000" } },
});
const JOBS = Number(values.jobs);
const T = "2026-06-01T12:00:00.000Z";
const wf = { workflow_id: "w", name: "w", version: "1", content: { nodes: {} } };
const result = {
  status: "completed",
  outputs: {},
  logs: [],
  execution_time: 0.01,
  node_results: {},
  error: null,
};

async function fill(store: SqlEventStore): Promise<number> {
  await store.append([{
    streamId: "robot-r1",
    expectedVersion: 0,
    events: [
      {
        type: "robot.registered",
        data: {
          robot_id: "r1",
          name: "r1",
          capabilities: [],
          tags: [],
          max_concurrent_jobs: 1_000_000,
          environment: null,
          version: null,
          registered_at: T,
        },
      },
      { type: "robot.connected", data: { connected_at: T } },
    ],
  }]);
  let robotVersion = 2;
  const per = 50;
  for (let start = 0; start < JOBS; start += per) {
    const writes: StreamAppend[] = [];
    const robotEvents: NewEvent[] = [];
    for (let i = start; i < Math.min(JOBS, start + per); i++) {
      const id = `bench-${i}`;
      const lease = `l-${i}`;
      writes.push({
        streamId: `job-${id}`,
        expectedVersion: 0,
        events: [
          {
            type: "job.submitted",
            data: {
              job_id: id,
              workflow: wf,
              variables: {},
              priority: i % 4,
              timeout: 60,
              created_at: T,
            },
          },
          { type: "job.queued", data: { queued_at: T, reason: "submitted" } },
          {
            type: "job.dispatched",
            data: { robot_id: "r1", lease_id: lease, attempt: 1, dispatched_at: T, deadline: T },
          },
          { type: "job.started", data: { lease_id: lease, started_at: T } },
          { type: "job.completed", data: { lease_id: lease, completed_at: T, result } },
        ],
      });
      robotEvents.push({ type: "robot.job_assigned", data: { job_id: id, lease_id: lease } });
      robotEvents.push({ type: "robot.job_released", data: { job_id: id, reason: "completed" } });
    }
    writes.push({ streamId: "robot-r1", expectedVersion: robotVersion, events: robotEvents });
    robotVersion += robotEvents.length;
    await store.append(writes);
  }
  return JOBS * 7 + 2;
}

console.log(`replay: ${JOBS} jobs, ${JOBS * 7 + 2} events\n`);
console.log("backend   write s   readAll ev/s   replay ev/s   replay/readAll");
for (const backend of BACKENDS) {
  const { store, drop } = await backend.open();
  try {
    let t0 = performance.now();
    const events = await fill(store);
    const writeSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    let after = 0;
    let read = 0;
    for (;;) {
      const batch = await store.readAll({ after, limit: 10_000 });
      if (batch.length === 0) break;
      read += batch.length;
      after = batch[batch.length - 1].globalPosition;
    }
    const readRate = read / ((performance.now() - t0) / 1000);
    const replay = await replayLog(store);
    const replayRate = replay.events / (replay.elapsedMs / 1000);
    if (replay.state.jobs.length !== JOBS || replay.events !== events) {
      throw new Error(`replay folded ${replay.events} events, ${replay.state.jobs.length} jobs`);
    }
    console.log(
      `${backend.name.padEnd(9)} ${writeSeconds.toFixed(1).padStart(7)}   ${
        Math.round(readRate).toString().padStart(12)
      }   ${Math.round(replayRate).toString().padStart(11)}   ${
        (replayRate / readRate).toFixed(2).padStart(14)
      }`,
    );
  } finally {
    await store.close();
    await drop();
  }
}
