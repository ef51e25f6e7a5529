/**
 * Half-open sockets: a robot whose TCP path silently dies (a proxy that drops every byte,
 * both sockets still open) is found by WebSocket pings, marked offline, and its job is
 * requeued exactly once, after the reconnect grace.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";
import { TcpProxy } from "./_tcp_proxy.ts";

const WORKFLOW = { nodes: {}, connections: [] };

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a robot behind a dead network path is found by pings and its job requeued once`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    // Heartbeat silence alone would take an hour: only the pings can find the robot.
    const o = await startOrchestrator(store, {
      heartbeatInterval: 600,
      heartbeatTimeout: 3600,
      reconnectGrace: 15,
      pingTimeout: 1,
    }, clock);
    const proxy = new TcpProxy(Number(new URL(o.url).port));
    const lost = new RawRobot(`ws://127.0.0.1:${proxy.port}/ws/robot`, o.robotToken, "robot-far");
    const healthy = new RawRobot(o.wsUrl, o.robotToken, "robot-near");
    try {
      await lost.register();
      const jobId = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
      const a = await lost.next("job_assignment");
      lost.send("job_accepted", { job_id: jobId, lease_id: a.payload.lease_id }, a.id);
      await o.waitForJob(jobId, ["running"]);

      proxy.blackhole();
      // No pong comes back: Deno closes the socket within pingTimeout (real time).
      await o.waitUntil(
        () => o.orchestrator.robot("robot-far")?.status === "offline",
        AbortSignal.timeout(30_000),
      );
      assert.equal(o.orchestrator.jobs.view(jobId)?.status, "running"); // kept during the grace
      // A healthy robot (its client answers pings) takes the job once it is requeued.
      await healthy.register();
      clock.advance(15_000);
      const requeued = await o.waitForJob(jobId, ["queued", "dispatched", "running"]);
      assert.ok(requeued.status !== "completed");
      const b = await healthy.next("job_assignment");
      assert.equal(b.payload.job_id, jobId);
      assert.equal(b.payload.attempt, 2);
      healthy.send("job_accepted", { job_id: jobId, lease_id: b.payload.lease_id }, b.id);
      healthy.send("job_result", {
        job_id: jobId,
        lease_id: b.payload.lease_id,
        status: "completed",
        execution_time: 0.1,
      });
      await o.waitForJob(jobId, ["completed"]);

      const events = await store.readStream(`job-${jobId}`);
      assert.equal(events[4].data.reason, "robot_lost: not_back_within_grace");
      assert.deepEqual(events.map((e) => e.type), [
        "job.submitted",
        "job.queued",
        "job.dispatched",
        "job.started",
        "job.queued",
        "job.dispatched",
        "job.started",
        "job.completed",
      ]);
      const far = (await store.readStream("robot-robot-far")).map((e) => [e.type, e.data.reason]);
      assert.deepEqual(far.filter(([t]) => t !== "robot.registered"), [
        ["robot.connected", undefined],
        ["robot.job_assigned", undefined],
        ["robot.disconnected", "connection_lost"],
        ["robot.job_released", "job.queued"],
      ]);
      assert.equal(o.orchestrator.robot("robot-near")?.status, "online");
    } finally {
      lost.kill();
      healthy.kill();
      await proxy.close();
      await o.stop();
      await drop();
    }
  });
}
