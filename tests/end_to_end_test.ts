/**
 * End to end, on both backends: real store, real HTTP, real WebSocket robots.
 */
import assert from "node:assert/strict";
import { RobotClient } from "../robot/robot_client.ts";
import { BACKENDS, startOrchestrator, type TestOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";
import { workflowExpectations, WORKFLOWS_DIR } from "./workflow_expectations.ts";

async function workflow(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(new URL(file, WORKFLOWS_DIR)));
}

const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

function robot(
  t: TestOrchestrator,
  name: string,
  options: Partial<ConstructorParameters<typeof RobotClient>[0]> = {},
) {
  return new RobotClient({
    url: t.wsUrl,
    token: t.robotToken,
    name,
    logger: quietLogger,
    ...options,
  });
}

function messagesIn(logs: { message: string }[], expected: string[]): void {
  let at = 0;
  for (const line of expected) {
    const found = logs.findIndex((l, i) => i >= at && l.message === line);
    assert.ok(
      found >= 0,
      `log line ${JSON.stringify(line)} missing (in order) from ${
        JSON.stringify(logs.map((l) => l.message))
      }`,
    );
    at = found + 1;
  }
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] stress_task_6 runs on a robot and every transition is in the log`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    const r = robot(t, "robot-1");
    try {
      await r.start();
      const submitted = await t.api("POST", "/api/v1/jobs", {
        workflow: await workflow("stress_task_6.json"),
      });
      assert.equal(submitted.status, 201);
      assert.equal(submitted.body.status, "queued");
      const jobId = submitted.body.job_id;
      await t.waitForJob(jobId, ["completed", "failed", "timeout", "cancelled"]);
      const job = (await t.api("GET", `/api/v1/jobs/${jobId}`)).body;
      assert.equal(job.status, "completed");
      assert.equal(job.robot_id, "robot-1");
      assert.ok(job.started_at && job.completed_at && job.created_at);
      messagesIn(job.result.logs, [
        "Found number greater than 20: 25",
        "Found number greater than 20: 40",
      ]);
      assert.equal(
        job.result.logs.filter((l: { message: string }) => l.message.startsWith("Found")).length,
        2,
      );
      assert.equal(typeof job.result.execution_time, "number");
      const stream = (await t.api("GET", `/api/v1/events?stream=job-${jobId}`)).body;
      const types: string[] = stream.events.map((e: { type: string }) => e.type);
      const core = types.filter((x) =>
        ["job.queued", "job.dispatched", "job.started", "job.completed"].includes(x)
      );
      assert.deepEqual(core, ["job.queued", "job.dispatched", "job.started", "job.completed"]);
      assert.deepEqual(
        stream.events.map((e: { stream_version: number }) => e.stream_version),
        types.map((_, i) => i + 1),
      );
      const robotEvents = await store.readStream("robot-robot-1");
      assert.deepEqual(robotEvents.map((e) => e.type), [
        "robot.registered",
        "robot.connected",
        "robot.job_assigned",
        "robot.job_released",
      ]);
      const metrics = (await t.api("GET", "/api/v1/metrics/dashboard")).body;
      assert.equal(metrics.completed_jobs_today, 1);
      assert.equal(metrics.total_robots, 1);
      assert.equal(metrics.online_robots, 1);
      assert.equal(metrics.success_rate, 100);
    } finally {
      await r.close();
      await t.stop();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] every workflow in shared/workflows ends as expected with its log lines`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    const r = robot(t, "robot-all", { maxConcurrentJobs: 4 });
    try {
      await r.start();
      const jobs = await Promise.all(workflowExpectations.map(async (exp) => {
        const res = await t.api("POST", "/api/v1/jobs", { workflow: await workflow(exp.file) });
        assert.equal(res.status, 201, exp.file);
        return { exp, jobId: res.body.job_id as string };
      }));
      for (const { exp, jobId } of jobs) {
        const view = await t.waitForJob(jobId, ["completed", "failed", "timeout", "cancelled"]);
        assert.equal(view.status, exp.status, `${exp.file}: ${view.error}`);
        messagesIn(view.result.logs, exp.logIncludes);
        for (const line of exp.logExcludes ?? []) {
          assert.ok(
            !view.result.logs.some((l: { message: string }) => l.message === line),
            `${exp.file} logged ${line}`,
          );
        }
        for (const part of exp.errorIncludes ?? []) {
          assert.ok(view.error.includes(part), `${exp.file}: ${view.error}`);
        }
      }
    } finally {
      await r.close();
      await t.stop();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] a lost robot's job is requeued and completed by another robot`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store, { reconnectGrace: 0 });
    const lost = new RawRobot(t.wsUrl, t.robotToken, "robot-lost");
    let good: RobotClient | null = null;
    try {
      await lost.register();
      const res = await t.api("POST", "/api/v1/jobs", {
        workflow: await workflow("stress_task_3.json"),
      });
      const jobId = res.body.job_id;
      const assignment = await lost.next("job_assignment");
      assert.equal(assignment.payload.job_id, jobId);
      lost.send(
        "job_accepted",
        { job_id: jobId, lease_id: assignment.payload.lease_id },
        assignment.id,
      );
      await t.waitForJob(jobId, ["running"]);
      lost.kill(); // vanishes without a goodbye
      await t.waitForJob(jobId, ["queued"]);
      good = robot(t, "robot-good");
      await good.start();
      const done = await t.waitForJob(jobId, ["completed", "failed"]);
      assert.equal(done.status, "completed");
      assert.equal(done.robot_id, "robot-good");
      assert.equal(done.attempt, 2);
      const lostView = (await t.api("GET", "/api/v1/robots/robot-lost")).body;
      assert.equal(lostView.status, "offline");
      assert.deepEqual(lostView.current_jobs, []);
    } finally {
      lost.kill();
      await good?.close();
      await t.stop();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] cancel stops a running job; a late result with the old lease is refused`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    const raw = new RawRobot(t.wsUrl, t.robotToken, "robot-raw");
    try {
      await raw.register();
      const jobId =
        (await t.api("POST", "/api/v1/jobs", { workflow: await workflow("stress_task_1.json") }))
          .body.job_id;
      const a = await raw.next("job_assignment");
      raw.send("job_accepted", { job_id: jobId, lease_id: a.payload.lease_id }, a.id);
      await t.waitForJob(jobId, ["running"]);
      const cancel = await t.api("POST", `/api/v1/jobs/${jobId}/cancel`);
      assert.equal(cancel.status, 202);
      assert.equal(cancel.body.cancel_requested, true);
      const order = await raw.next("cancel_job");
      assert.equal(order.payload.job_id, jobId);
      assert.equal(order.payload.lease_id, a.payload.lease_id);
      raw.send("job_result", {
        job_id: jobId,
        lease_id: a.payload.lease_id,
        status: "cancelled",
        outputs: {},
        logs: [],
        execution_time: 0.1,
        node_results: {},
      });
      const view = await t.waitForJob(jobId, ["cancelled", "completed"]);
      assert.equal(view.status, "cancelled");
      // A second result for the same lease changes nothing and is answered with an error.
      raw.send("job_result", {
        job_id: jobId,
        lease_id: "not-the-lease",
        status: "completed",
        outputs: {},
        execution_time: 1,
        node_results: {},
      });
      const err = await raw.next("error");
      assert.equal(err.payload.code, "stale_lease");
      const again = await t.api("POST", `/api/v1/jobs/${jobId}/cancel`);
      assert.equal(again.status, 409);
      assert.equal(again.body.job.status, "cancelled");
    } finally {
      raw.kill();
      await t.stop();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] jobs, robots and metrics come back from the log after a restart`, async () => {
    const { store, reopen, drop } = await backend.open();
    let t = await startOrchestrator(store);
    const r = robot(t, "robot-restart");
    try {
      await r.start();
      const ids: string[] = [];
      for (const file of ["stress_task_1.json", "stress_task_2.json", "desktop_notepad.json"]) {
        ids.push(
          (await t.api("POST", "/api/v1/jobs", { workflow: await workflow(file) })).body.job_id,
        );
      }
      for (const id of ids) await t.waitForJob(id, ["completed", "failed"]);
      await r.close();
      const queuedId = (await t.api("POST", "/api/v1/jobs", {
        workflow: await workflow("stress_task_9.json"),
        priority: "critical",
      })).body.job_id;
      await t.waitForJob(queuedId, ["queued"]);
      const before = {
        jobs: (await t.api("GET", "/api/v1/jobs")).body.jobs,
        robots: (await t.api("GET", "/api/v1/robots")).body.robots.map((
          x: { robot_id: string; status: string },
        ) => [x.robot_id, x.status]),
        metrics: (await t.api("GET", "/api/v1/metrics/dashboard")).body,
      };
      await t.stop();
      t = await startOrchestrator(await reopen());
      const after = {
        jobs: (await t.api("GET", "/api/v1/jobs")).body.jobs,
        robots: (await t.api("GET", "/api/v1/robots")).body.robots.map((
          x: { robot_id: string; status: string },
        ) => [x.robot_id, x.status]),
        metrics: (await t.api("GET", "/api/v1/metrics/dashboard")).body,
      };
      assert.deepEqual(after, before);
      assert.equal(before.jobs.length, 4);
      assert.equal(before.metrics.completed_jobs_today, 2);
      assert.equal(before.metrics.failed_jobs_today, 1);
      assert.equal(before.metrics.pending_jobs, 1);
    } finally {
      await t.stop();
      await drop();
    }
  });
}
