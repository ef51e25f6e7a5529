/**
 * The drain in-process, on an injected clock: robots are told, nothing new is dispatched,
 * a job that ends during the drain is recorded, one still running at the drain timeout is
 * requeued and its robot gets cancel_job; a second signal ends the wait at once.
 */
import assert from "node:assert/strict";
import { ManualClock, SHUTDOWN_REQUEUE_REASON } from "../engine/mod.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = { nodes: {}, connections: [] };

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] drain: robots told, no new dispatch, finished jobs kept, the rest requeued`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    const o = await startOrchestrator(store, {
      heartbeatInterval: 600,
      heartbeatTimeout: 3600,
      drainTimeout: 30,
    }, clock);
    const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-drain");
    try {
      await robot.register({ max_concurrent_jobs: 2 });
      const submit = async () =>
        (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id as string;
      const first = await submit();
      const second = await submit();
      const assignments = [await robot.next("job_assignment"), await robot.next("job_assignment")];
      const lease = new Map(assignments.map((a) => [a.payload.job_id, a.payload.lease_id]));
      for (const a of assignments) {
        robot.send(
          "job_accepted",
          { job_id: a.payload.job_id, lease_id: a.payload.lease_id },
          a.id,
        );
      }
      await o.waitForJob(first, ["running"]);
      await o.waitForJob(second, ["running"]);

      const lines: string[] = [];
      const draining = o.orchestrator.drain({ log: (l) => lines.push(l) });
      const notice = await robot.next("draining");
      assert.equal(notice.payload.drain_timeout, 30);
      assert.equal(notice.payload.deadline, "2026-06-01T12:00:30.000Z");
      assert.equal(o.orchestrator.draining, true);
      assert.equal((await fetch(`${o.url}/healthz`).then((r) => r.json())).status, "draining");
      // Submissions are still recorded, but nothing is dispatched any more.
      const late = await submit();
      assert.equal(o.orchestrator.jobs.view(late)?.status, "queued");
      // The first job finishes during the drain; the second outlives it.
      robot.send("job_result", {
        job_id: first,
        lease_id: lease.get(first),
        status: "completed",
        execution_time: 1,
      });
      await o.waitForJob(first, ["completed"]);
      clock.advance(30_000);
      const report = await draining;
      assert.deepEqual(report, { finished: [first], requeued: [second], waitedMs: 30_000 });
      const cancel = await robot.next("cancel_job");
      assert.equal(cancel.payload.job_id, second);
      assert.equal(cancel.payload.lease_id, lease.get(second));
      assert.equal((await robot.closed).code, 1001);
      const events = await store.readStream(`job-${second}`);
      assert.deepEqual(events.slice(-1).map((e) => [e.type, e.data.reason]), [
        ["job.queued", SHUTDOWN_REQUEUE_REASON],
      ]);
      assert.equal((await store.readStream(`job-${late}`)).length, 2); // submitted, queued
      assert.ok(lines.some((l) => l.includes(`requeued job ${second}`)), lines.join("\n"));
    } finally {
      robot.kill();
      await o.stop({ keepStore: true }).catch(() => {});
      await store.close();
      await drop();
    }
  });
}

Deno.test("drain: a second signal ends the wait at once", async () => {
  const { store, drop } = await BACKENDS[0].open();
  const o = await startOrchestrator(store, { drainTimeout: 3600 });
  const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-hurry");
  try {
    await robot.register();
    const jobId = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
    const a = await robot.next("job_assignment");
    robot.send("job_accepted", { job_id: jobId, lease_id: a.payload.lease_id }, a.id);
    await o.waitForJob(jobId, ["running"]);
    const force = new AbortController();
    const draining = o.orchestrator.drain({ signal: force.signal, log: () => {} });
    await robot.next("draining");
    force.abort();
    const report = await draining;
    assert.deepEqual(report.requeued, [jobId]);
    assert.ok(report.waitedMs < 3_600_000);
  } finally {
    robot.kill();
    await o.stop({ keepStore: true }).catch(() => {});
    await store.close();
    await drop();
  }
});
