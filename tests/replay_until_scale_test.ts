/**
 * `deno task replay --until T` reproduces the state at T for a log of more than 100,000
 * events (issue 3, "done when"). The log is written by bulk appends in a pattern whose
 * state at the end of every append is known: append b submits and queues the jobs of
 * batch b, starts those of batch b - 1 and completes those of batch b - 2.
 *
 * PostgreSQL only (a real `deno task replay` process reads it through DATABASE_URL).
 */
import assert from "node:assert/strict";
import { type NewEvent, openEventStore, type StreamAppend, subscribeAll } from "../events/mod.ts";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "./_harness.ts";

const JOBS_PER_BATCH = 100;
const BATCHES = 145; // 145 × 100 jobs × 7 events + 2 = 101,502 events
const wf = { workflow_id: "w", name: "w", version: "1", content: { nodes: {} } };
const result = {
  status: "completed",
  outputs: {},
  logs: [],
  execution_time: 2,
  node_results: {},
  error: null,
};
const jobId = (batch: number, i: number) => `b${batch}-${i}`;

/** Runs `deno task replay` as its own process and returns its JSON. */
async function replayCli(schema: string, until: Date): Promise<{
  position: number;
  jobs: { job_id: string; status: string }[];
  robots: { robot_id: string; current_jobs: string[]; metrics: { jobs_assigned: number } }[];
  queue: { job_id: string; priority: number }[];
  dashboard: { pending_jobs: number; running_jobs: number };
}> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/replay.ts", "--until", until.toISOString()],
    cwd: new URL("..", import.meta.url),
    env: { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("[postgres] deno task replay --until T reproduces the state at T of a log of 101,502 events", async () => {
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const store = await openEventStore({
    databaseUrl: TEST_DATABASE_URL,
    dataDir: "unused",
    schema,
    maxConnections: 2,
  });
  const now = new Date().toISOString();
  try {
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
            registered_at: now,
          },
        },
        { type: "robot.connected", data: { connected_at: now } },
      ],
    }]);
    let robotVersion = 2;
    /** recorded_at of each batch's append (milliseconds). */
    const recordedAt: number[] = [];
    let lastPosition = 0;
    for (let b = 0; b < BATCHES + 2; b++) {
      const writes: StreamAppend[] = [];
      const robot: NewEvent[] = [];
      for (let i = 0; i < JOBS_PER_BATCH; i++) {
        if (b < BATCHES) {
          const id = jobId(b, i);
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
                  created_at: now,
                },
              },
              { type: "job.queued", data: { queued_at: now, reason: "submitted" } },
            ],
          });
        }
        if (b >= 1 && b - 1 < BATCHES) {
          const id = jobId(b - 1, i);
          writes.push({
            streamId: `job-${id}`,
            expectedVersion: 2,
            events: [
              {
                type: "job.dispatched",
                data: {
                  robot_id: "r1",
                  lease_id: `l-${id}`,
                  attempt: 1,
                  dispatched_at: now,
                  deadline: now,
                },
              },
              { type: "job.started", data: { lease_id: `l-${id}`, started_at: now } },
            ],
          });
          robot.push({ type: "robot.job_assigned", data: { job_id: id, lease_id: `l-${id}` } });
        }
        if (b >= 2) {
          const id = jobId(b - 2, i);
          writes.push({
            streamId: `job-${id}`,
            expectedVersion: 4,
            events: [{
              type: "job.completed",
              data: { lease_id: `l-${id}`, completed_at: now, result },
            }],
          });
          robot.push({ type: "robot.job_released", data: { job_id: id, reason: "completed" } });
        }
      }
      if (robot.length) {
        writes.push({ streamId: "robot-r1", expectedVersion: robotVersion, events: robot });
        robotVersion += robot.length;
      }
      const { events } = await store.append(writes);
      recordedAt.push(events[0].recordedAt.getTime());
      lastPosition = Math.max(...events.map((e) => e.globalPosition));
    }
    // Wait until every event is past the gap-safe horizon (other sessions' transactions on
    // a shared server hold it back for a while).
    const sub = subscribeAll(store, { onEvents: () => {} });
    await sub.waitFor(lastPosition);
    await sub.close();
    const total = await store.currentPosition();
    assert.equal(total, lastPosition);
    assert.ok(total >= 100_000, `only ${total} events`);

    // Instants that fall strictly between two appends (ms precision) can be replayed to.
    const k = [40, 41, 42, 43, 44, 45].find((b) => recordedAt[b] < recordedAt[b + 1])!;
    assert.ok(k !== undefined, "no two consecutive appends in distinct milliseconds");
    const at = await replayCli(schema, new Date(recordedAt[k]));
    assert.equal(at.jobs.length, (k + 1) * JOBS_PER_BATCH);
    const statusOf = new Map(at.jobs.map((j) => [j.job_id, j.status]));
    for (let i = 0; i < JOBS_PER_BATCH; i++) {
      assert.equal(statusOf.get(jobId(k, i)), "queued");
      assert.equal(statusOf.get(jobId(k - 1, i)), "running");
      assert.equal(statusOf.get(jobId(k - 2, i)), "completed");
      assert.equal(statusOf.get(jobId(0, i)), "completed");
    }
    assert.equal(statusOf.get(jobId(k + 1, 0)), undefined);
    // The queue: batch k, critical first, first in first out within a priority.
    const expectedQueue = [3, 2, 1, 0].flatMap((p) =>
      Array.from({ length: JOBS_PER_BATCH }, (_, i) => i).filter((i) => i % 4 === p)
        .map((i) => jobId(k, i))
    );
    assert.deepEqual(at.queue.map((q) => q.job_id), expectedQueue);
    assert.equal(at.dashboard.pending_jobs, JOBS_PER_BATCH);
    assert.equal(at.dashboard.running_jobs, JOBS_PER_BATCH);
    const [robot] = at.robots;
    assert.equal(robot.metrics.jobs_assigned, k * JOBS_PER_BATCH);
    assert.deepEqual(
      [...robot.current_jobs].sort(),
      Array.from({ length: JOBS_PER_BATCH }, (_, i) => jobId(k - 1, i)).sort(),
    );

    // And at the end: every job completed, nothing queued or running.
    const end = await replayCli(schema, new Date(recordedAt[BATCHES + 1]));
    assert.equal(end.position, total);
    assert.equal(end.jobs.length, BATCHES * JOBS_PER_BATCH);
    assert.ok(end.jobs.every((j) => j.status === "completed"));
    assert.equal(end.queue.length, 0);
    assert.equal(end.robots[0].current_jobs.length, 0);
  } finally {
    await store.close();
    const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`drop schema if exists ${schema} cascade`);
    } finally {
      await sql.end();
    }
  }
});
