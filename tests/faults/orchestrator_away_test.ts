/**
 * Issue 5, item 6: the orchestrator is stopped for 60 s (an injected clock) while a robot
 * keeps running its job; when the orchestrator starts again and the robot comes back with
 * the job in `active_job_ids`, the job is not handed to anyone else — not to the idle
 * robot that reconnected first — and the robot's result, on its original lease, is the
 * one accepted. The robot may be back as late as the heartbeat timeout plus the reconnect
 * grace after the restart: its reconnect backoff can be as long as the heartbeat timeout.
 */
import assert from "node:assert/strict";
import { checkJobInvariants } from "../../audit/mod.ts";
import { ManualClock } from "../../engine/mod.ts";
import { BACKENDS, startOrchestrator, type TestOrchestrator } from "../_harness.ts";
import { RawRobot } from "../_raw_robot.ts";

const WORKFLOW = { nodes: {}, connections: [] };
const CONFIG = { heartbeatInterval: 5, heartbeatTimeout: 30, reconnectGrace: 15 };

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] an orchestrator away for 60 s does not give a running job to another robot when its robot comes back`, async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    const { store, drop } = await backend.open();
    const robots: RawRobot[] = [];
    let o: TestOrchestrator = await startOrchestrator(store, CONFIG, clock);
    const connect = (id: string) => {
      const r = new RawRobot(o.wsUrl, o.robotToken, id);
      robots.push(r);
      return r;
    };
    try {
      const w1 = connect("robot-w1");
      await w1.register();
      const jobId = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
      const a = await w1.next("job_assignment");
      const lease = a.payload.lease_id as string;
      w1.send("job_accepted", { job_id: jobId, lease_id: lease }, a.id);
      await o.waitForJob(jobId, ["running"]);
      const w2 = connect("robot-w2");
      await w2.register(); // idle, with room: it would take the job if it were requeued

      // The orchestrator goes away for 60 s; the robot keeps running the job meanwhile.
      await o.stop({ keepStore: true });
      clock.advance(60_000);
      o = await startOrchestrator(store, CONFIG, clock);

      const w2again = connect("robot-w2");
      await w2again.register(); // the idle robot is back first
      // The robot's reconnect backoff is at its cap (the reference robot waits up to 30 s
      // between attempts, as long as the heartbeat timeout): it is back 35 s after the
      // restart, within the heartbeat timeout plus the reconnect grace that a restart gives.
      clock.advance(35_000);
      const w1again = connect("robot-w1");
      const registered = await w1again.register({ active_job_ids: [jobId] });
      assert.deepEqual(registered.payload.resume_job_ids, [jobId]);
      w1again.send("job_result", {
        job_id: jobId,
        lease_id: lease,
        status: "completed",
        outputs: {},
        logs: [],
        execution_time: 70,
        node_results: {},
      });
      const ack = await w1again.next("job_result_ack");
      assert.equal(ack.payload.status, "completed");
      clock.advance(60_000); // past every timer armed at the restart: nothing changes
      const done = await o.waitForJob(jobId, ["completed"]);
      assert.equal(done.robot_id, "robot-w1");
      assert.equal(done.attempt, 1);

      const history = (await store.readStream(`job-${jobId}`)).map((e) =>
        [e.type, e.data.lease_id ?? null] as const
      );
      // One lease only: the idle robot was never offered the job, before or after the restart.
      assert.deepEqual(history, [
        ["job.submitted", null],
        ["job.queued", null],
        ["job.dispatched", lease],
        ["job.started", lease],
        ["job.completed", lease],
      ]);
      const report = await checkJobInvariants(store, { accepted: [jobId] });
      assert.deepEqual(report.violations, []);
    } finally {
      for (const r of robots) r.kill();
      await o.stop();
      await drop();
    }
  });
}
