/**
 * Issue 5, item 1: an attempt's deadline is an absolute instant in the log, so it fires on
 * time after the orchestrator restarted (XState does not restore delayed transitions from
 * a snapshot; the engine arms a timer for each in-flight job when it starts). The robot
 * that ran the job never comes back; its jobs are kept for it (heartbeat timeout and
 * reconnect grace far away), so only the deadline can end the job.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = { metadata: { name: "deadline-noop" }, nodes: {}, connections: [] };

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a job's deadline fires at its instant after an orchestrator restart`, async () => {
    const { store, reopen, drop } = await backend.open();
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    const config = { heartbeatInterval: 600, heartbeatTimeout: 3600, reconnectGrace: 3600 };
    let o = await startOrchestrator(store, config, clock);
    const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-gone");
    try {
      await robot.register();
      const { job_id } = (await o.api("POST", "/api/v1/jobs", {
        workflow: WORKFLOW,
        timeout: 60,
        retry: { max_retries: 0 },
      })).body;
      const a = await robot.next("job_assignment");
      const deadline = new Date(clock.now() + 60_000).toISOString();
      assert.equal(a.payload.deadline, deadline);
      robot.send("job_accepted", { job_id, lease_id: a.payload.lease_id }, a.id);
      await o.waitForJob(job_id, ["running"]);

      // The orchestrator stops 20 s into the attempt and starts again 20 s later.
      clock.advance(20_000);
      await o.stop();
      robot.kill();
      clock.advance(20_000);
      o = await startOrchestrator(await reopen(), config, clock);
      assert.equal(o.orchestrator.jobs.view(job_id)?.status, "running");
      clock.advance(19_999);
      assert.equal(o.orchestrator.jobs.view(job_id)?.status, "running", "not before its deadline");
      clock.advance(1);
      const view = await o.waitForJob(job_id, ["timeout", "queued", "failed"]);
      assert.equal(view.status, "timeout");
      const events = await o.store.readStream(`job-${job_id}`);
      const timedOut = events.find((e) => e.type === "job.timed_out");
      assert.equal(timedOut?.data.timed_out_at, deadline);
      assert.equal(timedOut?.data.lease_id, a.payload.lease_id);
      assert.deepEqual(o.orchestrator.robot("robot-gone")?.current_jobs, []);
    } finally {
      robot.kill();
      await o.stop();
      await drop();
    }
  });
}
