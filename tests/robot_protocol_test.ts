/**
 * The orchestrator's side of the robot protocol over real WebSockets: authentication,
 * garbage frames, leases, heartbeats on the server's (injected) clock.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = { nodes: {}, connections: [] };

Deno.test("a bad robot token gets robot_registered {success:false} and close code 4001", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  const raw = new RawRobot(o.wsUrl, "wrong-token", "intruder");
  try {
    const answer = await raw.register();
    assert.equal(answer.payload.success, false);
    assert.equal((await raw.closed).code, 4001);
    assert.deepEqual(await o.store.readAll({}), []);
  } finally {
    raw.kill();
    await o.stop();
  }
});

Deno.test("garbage frames get a protocol error and the connection survives", async (t) => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  const raw = new RawRobot(o.wsUrl, o.robotToken, "robot-g");
  try {
    const frames: [string, string][] = [
      ["not JSON", "invalid_json"],
      ["[1,2,3]", "invalid_message"],
      ['{"payload":{}}', "invalid_message"],
      ['{"type":"teleport","id":"m1","payload":{}}', "unknown_type"],
      ['{"type":"heartbeat","id":"m2","payload":{}}', "not_registered"],
      ["x".repeat(1024 * 1024 + 1), "frame_too_large"],
    ];
    for (const [frame, code] of frames) {
      await t.step(`${frame.slice(0, 40)} → ${code}`, async () => {
        await raw.sendRaw(frame);
        const err = await raw.next("error");
        assert.equal(err.payload.code, code);
      });
    }
    const registered = await raw.register();
    assert.equal(registered.payload.success, true);
    assert.equal(registered.payload.config.heartbeat_timeout, 30);
    await raw.sendRaw(
      '{"type":"register","id":"m3","payload":{"robot_id":"bad id!","auth_token":"test-robot-token"}}',
    );
    const err = await raw.next("error");
    assert.equal(err.payload.code, "invalid_message");
    assert.match(err.payload.message, /robot_id/);
    assert.equal(err.correlation_id, "m3");
    // One connection is one robot: registering under a second id is refused.
    await raw.sendRaw(JSON.stringify({
      type: "register",
      id: "m4",
      payload: { robot_id: "robot-ghost", auth_token: o.robotToken },
    }));
    const ghost = await raw.next("error");
    assert.equal(ghost.payload.code, "already_registered");
    assert.equal(o.orchestrator.robot("robot-ghost"), undefined);
  } finally {
    raw.kill();
    await o.stop();
  }
});

Deno.test("a silent robot is declared lost after the heartbeat timeout and its job requeued", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatInterval: 5,
    heartbeatTimeout: 30,
  }, clock);
  const raw = new RawRobot(o.wsUrl, o.robotToken, "robot-silent");
  try {
    await raw.register();
    const { job_id } = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body;
    const a = await raw.next("job_assignment");
    assert.equal(a.payload.deadline, new Date(clock.now() + 3600_000).toISOString());
    raw.send("job_accepted", { job_id, lease_id: a.payload.lease_id }, a.id);
    await o.waitForJob(job_id, ["running"]);
    clock.advance(20_000); // 20 s of silence: still alive
    assert.equal(o.orchestrator.robot("robot-silent")?.connected, true);
    clock.advance(15_000); // 35 s: lost
    const requeued = await o.waitForJob(job_id, ["queued"]);
    assert.match(requeued.queue_reason, /heartbeat_timeout/);
    assert.equal((await raw.closed).code, 4008);
    const robotView = o.orchestrator.robot("robot-silent")!;
    assert.equal(robotView.status, "offline");
    assert.equal(robotView.disconnect_reason, "heartbeat_timeout");
    // The lost robot's late result is refused: its lease is gone.
    const types = (await o.store.readStream(`job-${job_id}`)).map((e) => e.type);
    assert.deepEqual(types, [
      "job.submitted",
      "job.queued",
      "job.dispatched",
      "job.started",
      "job.queued",
    ]);
  } finally {
    raw.kill();
    await o.stop();
  }
});

Deno.test("a job runs out of time at its deadline: cancel_job is sent and it ends timeout", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatTimeout: 3600,
    heartbeatInterval: 600,
  }, clock);
  const raw = new RawRobot(o.wsUrl, o.robotToken, "robot-slow");
  try {
    await raw.register();
    const { job_id } = (await o.api("POST", "/api/v1/jobs", {
      workflow: WORKFLOW,
      timeout: 10,
      retry: { max_retries: 0 },
    })).body;
    const a = await raw.next("job_assignment");
    assert.equal(a.payload.timeout, 10);
    raw.send("job_accepted", { job_id, lease_id: a.payload.lease_id }, a.id);
    await o.waitForJob(job_id, ["running"]);
    clock.advance(10_000);
    const order = await raw.next("cancel_job");
    assert.equal(order.payload.reason, "timeout");
    const view = await o.waitForJob(job_id, ["timeout"]);
    assert.equal(view.status, "timeout");
    raw.send("job_result", {
      job_id,
      lease_id: a.payload.lease_id,
      status: "completed",
      execution_time: 11,
    });
    // A late result is acknowledged with the job's final state and changes nothing.
    const ack = await raw.next("job_result_ack");
    assert.equal(ack.payload.status, "timeout");
    assert.equal(o.orchestrator.jobs.view(job_id)?.status, "timeout");
  } finally {
    raw.kill();
    await o.stop();
  }
});

Deno.test("a robot that rejects a job does not get it again; another robot does", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  const picky = new RawRobot(o.wsUrl, o.robotToken, "robot-a");
  const other = new RawRobot(o.wsUrl, o.robotToken, "robot-b");
  try {
    await picky.register();
    const { job_id } = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body;
    const a = await picky.next("job_assignment");
    picky.send("job_rejected", { job_id, lease_id: a.payload.lease_id, reason: "no thanks" }, a.id);
    await o.waitForJob(job_id, ["queued"]);
    await other.register();
    const b = await other.next("job_assignment");
    assert.equal(b.payload.job_id, job_id);
    assert.equal(b.payload.attempt, 2);
    assert.notEqual(b.payload.lease_id, a.payload.lease_id);
  } finally {
    picky.kill();
    other.kill();
    await o.stop();
  }
});

Deno.test("a robot that drops and reconnects within the grace period keeps its job; one that does not loses it", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatInterval: 600,
    heartbeatTimeout: 3600,
    reconnectGrace: 15,
  }, clock);
  const first = new RawRobot(o.wsUrl, o.robotToken, "robot-blip");
  let back: RawRobot | null = null;
  let late: RawRobot | null = null;
  try {
    await first.register();
    const jobId = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
    const a = await first.next("job_assignment");
    first.send("job_accepted", { job_id: jobId, lease_id: a.payload.lease_id }, a.id);
    await o.waitForJob(jobId, ["running"]);
    first.kill();
    await o.waitUntil(() => o.orchestrator.robot("robot-blip")?.status === "offline");
    assert.equal(o.orchestrator.jobs.view(jobId)?.status, "running"); // kept during the grace
    clock.advance(10_000);
    back = new RawRobot(o.wsUrl, o.robotToken, "robot-blip");
    const registered = await back.register({ active_job_ids: [jobId] });
    assert.deepEqual(registered.payload.resume_job_ids, [jobId]);
    clock.advance(10_000); // past the first grace: nothing happens, the robot is back
    back.send("job_result", {
      job_id: jobId,
      lease_id: a.payload.lease_id,
      status: "completed",
      execution_time: 1,
    });
    const done = await o.waitForJob(jobId, ["completed", "queued"]);
    assert.equal(done.status, "completed");
    assert.equal(done.attempt, 1);

    // Second job: the robot drops and does not come back in time.
    const second = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
    const b = await back.next("job_assignment");
    back.send("job_accepted", { job_id: second, lease_id: b.payload.lease_id }, b.id);
    await o.waitForJob(second, ["running"]);
    back.kill();
    await o.waitUntil(() => o.orchestrator.robot("robot-blip")?.status === "offline");
    clock.advance(15_000);
    const requeued = await o.waitForJob(second, ["queued"]);
    assert.match(requeued.queue_reason, /not_back_within_grace/);
    // Coming back later with the job is too late: the job is not resumed.
    late = new RawRobot(o.wsUrl, o.robotToken, "robot-blip");
    const again = await late.register({ active_job_ids: [second] });
    assert.deepEqual(again.payload.resume_job_ids, []);
    late.send("job_result", {
      job_id: second,
      lease_id: b.payload.lease_id,
      status: "completed",
      execution_time: 1,
    });
    assert.equal((await late.next("error")).payload.code, "stale_lease");
  } finally {
    first.kill();
    back?.kill();
    late?.kill();
    await o.stop();
  }
});

Deno.test("results are acknowledged; a result resent after a lost acknowledgement is recorded once", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  const raw = new RawRobot(o.wsUrl, o.robotToken, "robot-ack");
  try {
    await raw.register();
    const jobId = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
    const a = await raw.next("job_assignment");
    raw.send("job_accepted", { job_id: jobId, lease_id: a.payload.lease_id }, a.id);
    const result = {
      job_id: jobId,
      lease_id: a.payload.lease_id,
      status: "completed",
      execution_time: 1,
    };
    const first = raw.send("job_result", result);
    const ack = await raw.next("job_result_ack");
    assert.equal(ack.correlation_id, first);
    assert.equal(ack.payload.status, "completed");
    raw.send("job_result", result); // the robot never saw the ack: it sends again
    assert.equal((await raw.next("job_result_ack")).payload.status, "completed");
    const types = (await o.store.readStream(`job-${jobId}`)).map((e) => e.type);
    assert.equal(types.filter((t) => t === "job.completed").length, 1);
  } finally {
    raw.kill();
    await o.stop();
  }
});

Deno.test("a job no robot can take stays queued with the reason visible in the API", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  const raw = new RawRobot(o.wsUrl, o.robotToken, "robot-plain");
  try {
    await raw.register({ capabilities: ["excel"] });
    const { job_id } = (await o.api("POST", "/api/v1/jobs", {
      workflow: WORKFLOW,
      required_capabilities: ["browser"],
    })).body;
    await o.waitUntil(() => o.orchestrator.dispatcher.waitReasons.has(job_id));
    const view = (await o.api("GET", `/api/v1/jobs/${job_id}`)).body;
    assert.equal(view.status, "queued");
    assert.match(view.queue_reason, /robot-plain: lacks capabilities browser/);
  } finally {
    raw.kill();
    await o.stop();
  }
});

Deno.test("an operator pauses a robot (no new jobs) and resumes it (it gets the queued job)", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  const raw = new RawRobot(o.wsUrl, o.robotToken, "robot-p");
  try {
    await raw.register();
    const paused = await o.api("POST", "/api/v1/robots/robot-p/pause");
    assert.equal(paused.status, 200);
    assert.equal(paused.body.status, "paused");
    assert.equal((await raw.next("pause")).payload.robot_id, "robot-p");
    const { job_id } = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body;
    await o.waitUntil(() => o.orchestrator.jobs.view(job_id)?.status === "queued");
    const again = await o.api("POST", "/api/v1/robots/robot-p/pause");
    assert.equal(again.status, 409);
    const resumed = await o.api("POST", "/api/v1/robots/robot-p/resume");
    assert.equal(resumed.body.status, "online");
    await raw.next("resume");
    const a = await raw.next("job_assignment");
    assert.equal(a.payload.job_id, job_id);
    assert.equal((await o.api("POST", "/api/v1/robots/nope/pause")).status, 404);
  } finally {
    raw.kill();
    await o.stop();
  }
});

Deno.test("a robot whose clock is 5 minutes off stays healthy: liveness is the server's receive time", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatInterval: 5,
    heartbeatTimeout: 30,
  }, clock);
  const behind = new RawRobot(o.wsUrl, o.robotToken, "robot-behind");
  const ahead = new RawRobot(o.wsUrl, o.robotToken, "robot-ahead");
  const heartbeat = async (robot: RawRobot, offsetMs: number) => {
    const id = crypto.randomUUID();
    await robot.sendRaw(JSON.stringify({
      type: "heartbeat",
      id,
      timestamp: new Date(clock.now() + offsetMs).toISOString(),
      payload: { robot_id: robot.robotId, status: "online", current_jobs: 0, active_job_ids: [] },
    }));
    assert.equal((await robot.next("heartbeat_ack")).correlation_id, id);
  };
  try {
    await behind.register();
    await ahead.register();
    // 100 s of server time, heartbeats every 20 s, stamped 5 minutes off either way.
    for (let i = 0; i < 5; i++) {
      clock.advance(20_000);
      await heartbeat(behind, -300_000);
      await heartbeat(ahead, 300_000);
    }
    for (const id of ["robot-behind", "robot-ahead"]) {
      assert.equal(o.orchestrator.robot(id)?.status, "online", id);
      assert.equal(o.orchestrator.robot(id)?.connected, true, id);
    }
    // Silence past the timeout on the server's clock loses them, whatever they stamp.
    clock.advance(35_000);
    assert.equal((await behind.closed).code, 4008);
    assert.equal((await ahead.closed).code, 4008);
  } finally {
    behind.kill();
    ahead.kill();
    await o.stop();
  }
});

Deno.test("a job whose cancel was requested ends cancelled when its robot is lost; it is not run again", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatInterval: 5,
    heartbeatTimeout: 30,
    cancelGrace: 600, // the robot is lost long before the grace period would end it
  }, clock);
  const lost = new RawRobot(o.wsUrl, o.robotToken, "robot-vanishing");
  const other = new RawRobot(o.wsUrl, o.robotToken, "robot-other");
  try {
    await lost.register();
    const { job_id } = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body;
    const a = await lost.next("job_assignment");
    lost.send("job_accepted", { job_id, lease_id: a.payload.lease_id }, a.id);
    await o.waitForJob(job_id, ["running"]);
    await other.register();
    const cancel = await o.api("POST", `/api/v1/jobs/${job_id}/cancel`);
    assert.equal(cancel.status, 202);
    assert.equal((await lost.next("cancel_job")).payload.job_id, job_id);
    // robot-vanishing never confirms and goes silent; robot-other keeps heartbeating.
    for (let i = 0; i < 2; i++) {
      clock.advance(20_000);
      other.send("heartbeat", { robot_id: "robot-other", status: "online", active_job_ids: [] });
      await other.next("heartbeat_ack");
    }
    const view = await o.waitForJob(job_id, ["cancelled", "queued", "dispatched"]);
    assert.equal(view.status, "cancelled");
    const types = (await o.store.readStream(`job-${job_id}`)).map((e) => e.type);
    assert.deepEqual(types, [
      "job.submitted",
      "job.queued",
      "job.dispatched",
      "job.started",
      "job.cancel_requested",
      "job.cancelled",
    ]);
    assert.deepEqual(o.orchestrator.robot("robot-vanishing")?.current_jobs, []);
    assert.deepEqual(o.orchestrator.robot("robot-other")?.current_jobs, []);
  } finally {
    lost.kill();
    other.kill();
    await o.stop();
  }
});
