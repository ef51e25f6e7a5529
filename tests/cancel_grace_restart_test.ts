/**
 * The grace deadline of a cancel is an absolute instant in the log (`grace_deadline` of
 * `job.cancel_requested`), like a job's deadline: after the orchestrator restarted, or
 * after the node that took the cancel died and another leads, an unconfirmed cancel still
 * ends the job `cancelled` at that instant and revokes the robot's lease. The robot here
 * never confirms (it is gone), and its heartbeat timeout, reconnect grace and the job's
 * timeout are far away, so only the cancel grace can end the job.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { type Clock, ManualClock } from "../engine/mod.ts";
import { createPostgresClient, openEventStore, type SqlClient } from "../events/mod.ts";
import {
  BACKENDS,
  startOrchestrator,
  TEST_DATABASE_URL,
  type TestOrchestrator,
} from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = { metadata: { name: "cancel-grace" }, nodes: {}, connections: [] };
const CONFIG = {
  heartbeatInterval: 600,
  heartbeatTimeout: 3600,
  reconnectGrace: 3600,
  cancelGrace: 30,
  sealInterval: 0,
};

/** A robot runs a job (accepted, running); returns the job id and lease. */
async function runningJob(
  o: TestOrchestrator,
  robot: RawRobot,
): Promise<{ jobId: string; leaseId: string }> {
  await robot.register();
  const { job_id } = (await o.api("POST", "/api/v1/jobs", {
    workflow: WORKFLOW,
    timeout: 3600,
    retry: { max_retries: 0 },
  })).body;
  const a = await robot.next("job_assignment");
  robot.send("job_accepted", { job_id, lease_id: a.payload.lease_id }, a.id);
  await o.waitForJob(job_id, ["running"]);
  return { jobId: job_id, leaseId: a.payload.lease_id as string };
}

/** The job ended cancelled by the grace, at the recorded instant, and the robot was released. */
async function assertCancelledByGrace(
  o: TestOrchestrator,
  jobId: string,
  robotId: string,
  graceDeadline: string,
): Promise<void> {
  const view = await o.waitForJob(jobId, ["cancelled", "failed", "timeout", "queued"]);
  assert.equal(view.status, "cancelled");
  const events = await o.store.readStream(`job-${jobId}`);
  const cancelled = events.find((e) => e.type === "job.cancelled");
  assert.equal(cancelled?.data.reason, "cancel not confirmed; lease revoked");
  assert.equal(cancelled?.data.cancelled_at, graceDeadline);
  const released = (await o.store.readStream(`robot-${robotId}`))
    .filter((e) => e.type === "robot.job_released");
  assert.deepEqual(released.map((e) => e.data), [{ job_id: jobId, reason: "job.cancelled" }]);
  assert.deepEqual(o.orchestrator.robot(robotId)?.current_jobs, []);
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] an unconfirmed cancel ends the job at its recorded grace deadline after an orchestrator restart`, async () => {
    const { store, reopen, drop } = await backend.open();
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    let o = await startOrchestrator(store, CONFIG, clock);
    const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-deaf");
    try {
      const { jobId, leaseId } = await runningJob(o, robot);
      const cancel = await o.api("POST", `/api/v1/jobs/${jobId}/cancel`);
      assert.equal(cancel.status < 300, true, JSON.stringify(cancel.body));
      const asked = await robot.next("cancel_job");
      assert.equal(asked.payload.lease_id, leaseId);
      const graceDeadline = new Date(clock.now() + 30_000).toISOString();
      const requested = (await o.store.readStream(`job-${jobId}`))
        .find((e) => e.type === "job.cancel_requested");
      assert.equal(requested?.data.grace_deadline, graceDeadline);

      // The orchestrator stops 10 s into the grace (its timer is lost with it) and starts
      // again 10 s later; the robot never confirms.
      clock.advance(10_000);
      await o.stop();
      robot.kill();
      clock.advance(10_000);
      o = await startOrchestrator(await reopen(), CONFIG, clock);
      assert.equal(o.orchestrator.jobs.view(jobId)?.status, "running");
      clock.advance(9_999);
      assert.equal(o.orchestrator.jobs.view(jobId)?.status, "running", "not before the grace");
      clock.advance(1);
      await assertCancelledByGrace(o, jobId, "robot-deaf", graceDeadline);
    } finally {
      robot.kill();
      await o.stop();
      await drop();
    }
  });
}

Deno.test("cluster: the leader that took a cancel dies; the new leader ends the job at the recorded grace deadline", async () => {
  const schema = `cg_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const clock = new ManualClock(Date.now());
  const clients: SqlClient[] = [];
  const nodes: TestOrchestrator[] = [];
  const start = async (name: string, c: Clock) => {
    const store = await openEventStore({
      databaseUrl: TEST_DATABASE_URL,
      dataDir: "unused",
      schema,
      maxConnections: 4,
    });
    const client = await createPostgresClient({ url: TEST_DATABASE_URL, schema, max: 2 });
    clients.push(client);
    const node = await startOrchestrator(store, CONFIG, c, {
      cluster: { client, nodeId: name, leaseMs: 1500, renewMs: 300, nodeIntervalMs: 300 },
    });
    nodes.push(node);
    return node;
  };
  let robot: RawRobot | null = null;
  try {
    const a = await start("node-a", clock);
    assert.equal(a.orchestrator.cluster!.isLeader, true);
    const b = await start("node-b", clock);
    robot = new RawRobot(b.wsUrl, b.robotToken, "robot-on-b");
    const { jobId } = await runningJob(b, robot);
    // The cancel is taken by A, the leader: it keeps the grace deadline.
    const cancel = await a.api("POST", `/api/v1/jobs/${jobId}/cancel`);
    assert.equal(cancel.status < 300, true, JSON.stringify(cancel.body));
    await robot.next("cancel_job"); // delivered by B, which holds the socket
    const graceDeadline = new Date(clock.now() + 30_000).toISOString();
    const requested = (await b.store.readStream(`job-${jobId}`))
      .find((e) => e.type === "job.cancel_requested");
    assert.equal(requested?.data.grace_deadline, graceDeadline);

    // A dies (its process stops: no lease renewal, no heartbeat, no timers).
    const aCluster = a.orchestrator.cluster!;
    await aCluster.elector.stop();
    await aCluster.registry.stop();
    a.orchestrator.dispatcher.disarmDeadlines();
    const bLeads = new Promise<void>((resolve) => {
      const off = b.orchestrator.onLeader(() => {
        queueMicrotask(() => off());
        resolve();
      });
    });
    // B's election rounds run every 300 ms of the shared clock: A's lease runs out.
    while (!b.orchestrator.cluster!.isLeader) {
      clock.advance(300);
      await b.orchestrator.cluster!.elector.idle();
    }
    await bLeads;
    assert.equal(b.orchestrator.cluster!.status().leader_token, 2);
    assert.equal(b.orchestrator.jobs.view(jobId)?.status, "running");
    // Up to the grace deadline on the clock, in steps (the rounds go on).
    while (clock.now() < Date.parse(graceDeadline)) {
      clock.advance(Math.min(300, Date.parse(graceDeadline) - clock.now()));
      await b.orchestrator.cluster!.elector.idle();
    }
    await assertCancelledByGrace(b, jobId, "robot-on-b", graceDeadline);
    const cancelled = (await b.store.readStream(`job-${jobId}`))
      .find((e) => e.type === "job.cancelled");
    assert.equal(cancelled?.metadata.leader_node, "node-b");
    assert.equal(cancelled?.metadata.leader_token, 2);
  } finally {
    robot?.kill();
    for (const node of nodes) await node.stop().catch(() => {});
    for (const client of clients) await client.close();
    const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`drop schema if exists ${schema} cascade`);
    } finally {
      await sql.end();
    }
  }
});
