/**
 * Issue 5, item 4, the test it asks for: robot W1 runs job J, its heartbeats stop past the
 * heartbeat timeout (server clock), J is requeued and given to W2; then both report
 * completion. Exactly one terminal event is recorded, W2's; W1's result (old lease) is
 * refused with `stale_lease`; the log shows attempt 1 ended as lost.
 */
import assert from "node:assert/strict";
import { checkJobInvariants, TERMINAL_JOB_EVENTS } from "../audit/mod.ts";
import { ManualClock } from "../engine/mod.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = { metadata: { name: "fencing-noop" }, nodes: {}, connections: [] };

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a robot presumed lost and the robot that took its job both report completion: one terminal event, the second's`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    const o = await startOrchestrator(store, {
      heartbeatInterval: 5,
      heartbeatTimeout: 30,
      reconnectGrace: 0,
    }, clock);
    const w1 = new RawRobot(o.wsUrl, o.robotToken, "robot-w1");
    const w2 = new RawRobot(o.wsUrl, o.robotToken, "robot-w2");
    let w1Again: RawRobot | null = null;
    const heartbeat = async (robot: RawRobot, active: string[]) => {
      robot.send("heartbeat", {
        robot_id: robot.robotId,
        status: "online",
        active_job_ids: active,
      });
      await robot.next("heartbeat_ack");
    };
    try {
      await w1.register();
      const { job_id } = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body;
      const first = await w1.next("job_assignment");
      w1.send("job_accepted", { job_id, lease_id: first.payload.lease_id }, first.id);
      await o.waitForJob(job_id, ["running"]);
      await w2.register();

      // W1's heartbeats are blocked; W2 keeps sending its own. 35 s later W1 is lost.
      for (let i = 0; i < 7; i++) {
        clock.advance(5_000);
        await heartbeat(w2, []);
      }
      assert.equal((await w1.closed).code, 4008);
      const second = await w2.next("job_assignment");
      assert.equal(second.payload.job_id, job_id);
      assert.equal(second.payload.attempt, 2);
      assert.notEqual(second.payload.lease_id, first.payload.lease_id);
      w2.send("job_accepted", { job_id, lease_id: second.payload.lease_id }, second.id);
      await o.waitForJob(job_id, ["running"]);

      // W1 comes back still holding J and reports its completion: refused, changes nothing.
      w1Again = new RawRobot(o.wsUrl, o.robotToken, "robot-w1");
      const registered = await w1Again.register({ active_job_ids: [job_id] });
      assert.deepEqual(registered.payload.resume_job_ids, []);
      w1Again.send("job_result", {
        job_id,
        lease_id: first.payload.lease_id,
        status: "completed",
        execution_time: 40,
        outputs: { from: "w1" },
      });
      assert.equal((await w1Again.next("error")).payload.code, "stale_lease");
      assert.equal(o.orchestrator.jobs.view(job_id)?.status, "running");
      // W2's completion is the one recorded.
      w2.send("job_result", {
        job_id,
        lease_id: second.payload.lease_id,
        status: "completed",
        execution_time: 1,
        outputs: { from: "w2" },
      });
      assert.equal((await w2.next("job_result_ack")).payload.status, "completed");

      const events = await store.readStream(`job-${job_id}`);
      const terminal = events.filter((e) => TERMINAL_JOB_EVENTS.has(e.type));
      assert.equal(terminal.length, 1);
      assert.equal(terminal[0].type, "job.completed");
      assert.equal(terminal[0].data.lease_id, second.payload.lease_id);
      assert.deepEqual(
        (terminal[0].data.result as { outputs: Record<string, unknown> }).outputs,
        { from: "w2" },
      );
      const lostAt = events.findIndex((e) =>
        e.type === "job.queued" && e.data.reason === "robot_lost: heartbeat_timeout"
      );
      assert.ok(lostAt > 0, "attempt 1 ended as lost");
      assert.equal(events[lostAt - 1].type, "job.started");
      assert.equal(events[lostAt - 1].data.lease_id, first.payload.lease_id);
      const report = await checkJobInvariants(store, { accepted: [job_id] });
      assert.deepEqual(report.violations, []);
      assert.deepEqual(report.outcomes, { "job.completed": 1 });
    } finally {
      w1.kill();
      w2.kill();
      w1Again?.kill();
      await o.stop();
      await drop();
    }
  });
}
