/**
 * Issue 5, item 6 ("in-flight assignments are reconciled, not duplicated"): an assignment
 * that reaches the read models after its robot registered — a `job.dispatched` appended by
 * an orchestrator that was SIGKILLed, whose transaction committed after the next start
 * replayed the log — is reconciled against the robot's heartbeats. The robot does not know
 * the job; two consecutive heartbeats omit it; the job is requeued as lost once and another
 * robot completes it. A job whose `job_assignment` crosses a heartbeat on the wire (the
 * heartbeat omits it, or heartbeats bunched within less than an interval omit it) is not
 * mistaken for lost.
 *
 * The killed process's append is simulated by appending the two events of a dispatch
 * straight to the store, as another writer would.
 */
import assert from "node:assert/strict";
import { checkJobInvariants } from "../audit/mod.ts";
import { ManualClock } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { RobotClient } from "../robot/robot_client.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { type Msg, RawRobot } from "./_raw_robot.ts";

const WORKFLOW = { metadata: { name: "reconcile-noop" }, nodes: {}, connections: [] };

/** Sends a heartbeat listing `active` and waits for its acknowledgement (sent once handled). */
async function heartbeat(robot: RawRobot, active: string[]): Promise<Msg> {
  const id = robot.send("heartbeat", {
    robot_id: robot.robotId,
    status: "online",
    current_jobs: active.length,
    active_job_ids: active,
  });
  const ack = await robot.next("heartbeat_ack");
  assert.equal(ack.correlation_id, id);
  return ack;
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] an assignment the robot never got is requeued after two heartbeats omit it, once; one in flight is kept`, async () => {
    const { store, drop } = await backend.open();
    // The server's clock moves only when told: heartbeats are 5 s apart when the test says.
    const clock = new ManualClock(Date.now());
    const o = await startOrchestrator(
      store,
      { heartbeatInterval: 5, heartbeatTimeout: 3600 },
      clock,
    );
    const unaware = new RawRobot(o.wsUrl, o.robotToken, "robot-unaware");
    let helper: RobotClient | null = null;
    try {
      await unaware.register({ max_concurrent_jobs: 2 });
      // J needs a capability no connected robot has: it waits in the queue.
      const submitted = await o.api("POST", "/api/v1/jobs", {
        workflow: WORKFLOW,
        required_capabilities: ["elsewhere"],
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const j: string = submitted.body.job_id;
      await o.waitForJob(j, ["queued"]);

      // Another writer (the killed process) gives J to robot-unaware after it registered.
      const lostLease = crypto.randomUUID();
      const jobVersion = (await store.readStream(`job-${j}`)).length;
      const robotVersion = (await store.readStream("robot-robot-unaware")).length;
      await store.append([
        {
          streamId: `job-${j}`,
          expectedVersion: jobVersion,
          events: [{
            type: "job.dispatched",
            data: {
              robot_id: "robot-unaware",
              lease_id: lostLease,
              attempt: 1,
              dispatched_at: new Date(clock.now()).toISOString(),
              deadline: new Date(clock.now() + 3600_000).toISOString(),
            },
          }],
        },
        {
          streamId: "robot-robot-unaware",
          expectedVersion: robotVersion,
          events: [{ type: "robot.job_assigned", data: { job_id: j, lease_id: lostLease } }],
        },
      ]);
      await o.waitUntil(() =>
        o.orchestrator.robot("robot-unaware")?.current_jobs.includes(j) === true
      );
      assert.equal(o.orchestrator.jobs.view(j)?.status, "dispatched");

      // Heartbeat 1 omits J: one omission is not enough.
      clock.advance(1000);
      await heartbeat(unaware, []);
      assert.equal(o.orchestrator.jobs.view(j)?.status, "dispatched");
      // Heartbeat 2, one interval later, omits J again: requeued as lost.
      clock.advance(5000);
      await heartbeat(unaware, []);
      const requeued = o.orchestrator.jobs.view(j);
      assert.equal(requeued?.status, "queued");
      assert.equal(requeued?.queue_reason, "robot_lost: not_in_heartbeats");
      assert.deepEqual(o.orchestrator.robot("robot-unaware")?.current_jobs, []);

      // K is dispatched to robot-unaware; heartbeats that crossed its assignment omit it:
      // one received at the instant it was sent, then two within less than an interval
      // (bunched, e.g. frames that waited in a stalled robot). None of them loses K.
      const k: string = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
      const assignment = await unaware.next("job_assignment");
      assert.equal(assignment.payload.job_id, k);
      await heartbeat(unaware, []);
      clock.advance(1000);
      await heartbeat(unaware, []);
      clock.advance(1000);
      await heartbeat(unaware, []);
      assert.equal(o.orchestrator.jobs.view(k)?.status, "dispatched");
      unaware.send("job_accepted", { job_id: k, lease_id: assignment.payload.lease_id });
      await o.waitForJob(k, ["running"]);
      for (let i = 0; i < 2; i++) {
        clock.advance(5000);
        await heartbeat(unaware, [k]);
      }
      assert.equal(o.orchestrator.jobs.view(k)?.status, "running");
      assert.equal(o.orchestrator.jobs.view(k)?.attempt, 1);

      // The lost lease is fenced: a late message for it changes nothing.
      unaware.send("job_result", {
        job_id: j,
        lease_id: lostLease,
        status: "completed",
        execution_time: 0,
      });
      assert.equal((await unaware.next("error")).payload.code, "stale_lease");

      // A robot with the capability completes J; robot-unaware completes K.
      helper = new RobotClient({
        url: o.wsUrl,
        token: o.robotToken,
        name: "robot-helper",
        capabilities: ["elsewhere"],
        logger: { debug() {}, info() {}, warn() {}, error() {} },
      });
      await helper.start();
      assert.equal((await o.waitForJob(j, ["completed", "failed"])).status, "completed");
      unaware.send("job_result", {
        job_id: k,
        lease_id: assignment.payload.lease_id,
        status: "completed",
        execution_time: 0,
      });
      assert.equal((await unaware.next("job_result_ack")).payload.status, "completed");

      // The attempt's lifecycle (progress and log lines of the robot aside).
      const events = (await store.readStream(`job-${j}`)).filter((e) =>
        e.type !== "job.progressed" && e.type !== "job.logged"
      );
      assert.deepEqual(events.map((e) => e.type), [
        "job.submitted",
        "job.queued",
        "job.dispatched",
        "job.queued",
        "job.dispatched",
        "job.started",
        "job.completed",
      ]);
      assert.equal(events[3].data.reason, "robot_lost: not_in_heartbeats");
      assert.equal(events[4].data.attempt, 2);
      assert.notEqual(events[4].data.robot_id, "robot-unaware");
      const report = await checkJobInvariants(store, { accepted: [j, k] });
      assert.deepEqual(report.violations, []);
      assert.deepEqual(report.outcomes, { "job.completed": 2 });
    } finally {
      unaware.kill();
      await helper?.close();
      await o.stop();
      await drop();
    }
  });
}

Deno.test("a heartbeat whose active_job_ids is not a list of ids is refused, nothing changes", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatInterval: 600,
    heartbeatTimeout: 3600,
  });
  const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-odd");
  try {
    await robot.register();
    for (const bad of ["j-1", [1, 2], { j: 1 }, null]) {
      const id = robot.send("heartbeat", { robot_id: "robot-odd", active_job_ids: bad });
      const error = await robot.next("error");
      assert.equal(error.correlation_id, id);
      assert.equal(error.payload.code, "invalid_message");
      assert.match(error.payload.message, /payload\.active_job_ids/);
    }
    // A heartbeat without the list (older robots) is acknowledged as before.
    robot.send("heartbeat", { robot_id: "robot-odd", status: "online" });
    assert.equal((await robot.next("heartbeat_ack")).payload.robot_id, "robot-odd");
  } finally {
    robot.kill();
    await o.stop();
  }
});
