/**
 * Retries with backoff on an injected clock, over a real WebSocket robot.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = { nodes: {}, connections: [] };

function fail(robot: RawRobot, jobId: string, leaseId: string, type: string): void {
  robot.send("job_result", {
    job_id: jobId,
    lease_id: leaseId,
    status: "failed",
    outputs: {},
    logs: [],
    execution_time: 0.1,
    node_results: {},
    error: { type, message: `${type} happened` },
  });
}

Deno.test("a retryable failure is retried after its backoff delay; max_retries 2 means 3 attempts", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatInterval: 600,
    heartbeatTimeout: 3600,
  }, clock);
  o.orchestrator.core.random = () => 0; // jitter at its floor: exactly d/2
  const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-flaky");
  try {
    await robot.register();
    const res = await o.api("POST", "/api/v1/jobs", {
      workflow: WORKFLOW,
      priority: "high",
      retry: { max_retries: 2, initial_delay: 2, max_delay: 60, backoff_factor: 3 },
    });
    const jobId = res.body.job_id;
    const delays = [1_000, 3_000]; // d/2 of 2 s, then of 6 s
    for (let attempt = 1; attempt <= 3; attempt++) {
      const a = await robot.next("job_assignment");
      assert.equal(a.payload.attempt, attempt);
      robot.send("job_accepted", { job_id: jobId, lease_id: a.payload.lease_id }, a.id);
      await o.waitForJob(jobId, ["running"]);
      fail(robot, jobId, a.payload.lease_id, "TransientError");
      if (attempt === 3) break;
      const waiting = await o.waitUntil(() => o.orchestrator.jobs.view(jobId)?.failures === attempt)
        .then(() => o.orchestrator.jobs.view(jobId)!);
      assert.equal(waiting.status, "queued");
      assert.equal(waiting.retry_at, new Date(clock.now() + delays[attempt - 1]).toISOString());
      clock.advance(delays[attempt - 1] - 1);
      assert.equal(o.orchestrator.jobs.view(jobId)?.status, "queued"); // not before its time
      clock.advance(1);
    }
    const failed = await o.waitForJob(jobId, ["failed"]);
    assert.equal(failed.failures, 2);
    assert.equal(failed.attempt, 3);
    assert.match(failed.error, /TransientError/);
    assert.equal(failed.priority, "high");
    const types = (await o.store.readStream(`job-${jobId}`)).map((e) => e.type)
      .filter((t) => ["job.dispatched", "job.retry_scheduled", "job.failed"].includes(t));
    assert.deepEqual(types, [
      "job.dispatched",
      "job.retry_scheduled",
      "job.dispatched",
      "job.retry_scheduled",
      "job.dispatched",
      "job.failed",
    ]);
  } finally {
    robot.kill();
    await o.stop();
  }
});

Deno.test("a non-retryable error fails the job at once; a cancelled job is never retried", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-x");
  try {
    await robot.register();
    const jobId = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
    const a = await robot.next("job_assignment");
    robot.send("job_accepted", { job_id: jobId, lease_id: a.payload.lease_id }, a.id);
    await o.waitForJob(jobId, ["running"]);
    fail(robot, jobId, a.payload.lease_id, "UnsupportedNodeError");
    const view = await o.waitForJob(jobId, ["failed", "queued"]);
    assert.equal(view.status, "failed");
    assert.equal(view.failures, 0);
    assert.equal(view.max_retries, 3); // the reference's default

    const second = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
    const b = await robot.next("job_assignment");
    robot.send("job_accepted", { job_id: second, lease_id: b.payload.lease_id }, b.id);
    await o.waitForJob(second, ["running"]);
    assert.equal((await o.api("POST", `/api/v1/jobs/${second}/cancel`)).status, 202);
    fail(robot, second, b.payload.lease_id, "TransientError");
    const ended = await o.waitForJob(second, ["failed", "queued", "cancelled"]);
    assert.equal(ended.status, "failed");
  } finally {
    robot.kill();
    await o.stop();
  }
});

Deno.test("a workflow's settings.retry_count is the job's max_retries; bad retry fields are 400", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const job = (await o.api("POST", "/api/v1/jobs", {
      workflow: { ...WORKFLOW, settings: { retry_count: 0 } },
    })).body;
    assert.equal((await o.api("GET", `/api/v1/jobs/${job.job_id}`)).body.max_retries, 0);
    const bad = await o.api("POST", "/api/v1/jobs", {
      workflow: WORKFLOW,
      retry: { max_retries: -2 },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, "retry.max_retries");
  } finally {
    await o.stop();
  }
});
