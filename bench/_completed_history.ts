/**
 * A synthetic history for the replay and cold-start benchmarks, written through the store's
 * own `append` (hash chain included): one robot registers and connects, then each job is
 * submitted, queued, dispatched to it, started and completed, with the robot's assignment
 * and release: 7 events per job plus 2 for the robot.
 *
 * @module
 */
import type { NewEvent, SqlEventStore, StreamAppend } from "../events/mod.ts";

const wf = { workflow_id: "w", name: "w", version: "1", content: { nodes: {} } };
const result = {
  status: "completed",
  outputs: {},
  logs: [],
  execution_time: 0.01,
  node_results: {},
  error: null,
};

/** What {@linkcode appendCompletedJobs} writes. */
export interface CompletedJobsOptions {
  /** The robot that runs every job (its stream must not exist yet). */
  robotId: string;
  /** Number of jobs. */
  jobs: number;
  /** Job id of the i-th job (0-based). */
  jobId: (i: number) => string;
  /** Jobs per `append` call (one transaction each). */
  perAppend: number;
  /** Every event's timestamps (RFC 3339). */
  at: string;
}

/**
 * Appends the robot's registration and the jobs' histories.
 * @returns the number of events written (`7 × jobs + 2`).
 */
export async function appendCompletedJobs(
  store: SqlEventStore,
  { robotId, jobs, jobId, perAppend, at }: CompletedJobsOptions,
): Promise<number> {
  await store.append([{
    streamId: `robot-${robotId}`,
    expectedVersion: 0,
    events: [
      {
        type: "robot.registered",
        data: {
          robot_id: robotId,
          name: robotId,
          capabilities: [],
          tags: [],
          max_concurrent_jobs: 1_000_000,
          environment: null,
          version: null,
          registered_at: at,
        },
      },
      { type: "robot.connected", data: { connected_at: at } },
    ],
  }]);
  let robotVersion = 2;
  for (let start = 0; start < jobs; start += perAppend) {
    const writes: StreamAppend[] = [];
    const robotEvents: NewEvent[] = [];
    for (let i = start; i < Math.min(jobs, start + perAppend); i++) {
      const id = jobId(i);
      const lease = `l-${id}`;
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
              created_at: at,
            },
          },
          { type: "job.queued", data: { queued_at: at, reason: "submitted" } },
          {
            type: "job.dispatched",
            data: {
              robot_id: robotId,
              lease_id: lease,
              attempt: 1,
              dispatched_at: at,
              deadline: at,
            },
          },
          { type: "job.started", data: { lease_id: lease, started_at: at } },
          { type: "job.completed", data: { lease_id: lease, completed_at: at, result } },
        ],
      });
      robotEvents.push({ type: "robot.job_assigned", data: { job_id: id, lease_id: lease } });
      robotEvents.push({ type: "robot.job_released", data: { job_id: id, reason: "completed" } });
    }
    writes.push({
      streamId: `robot-${robotId}`,
      expectedVersion: robotVersion,
      events: robotEvents,
    });
    robotVersion += robotEvents.length;
    await store.append(writes);
  }
  return jobs * 7 + 2;
}
