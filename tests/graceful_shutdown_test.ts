/**
 * SIGTERM drains a real orchestrator process: with a real robot process running a job
 * shorter than DRAIN_TIMEOUT and one longer, the short one completes, the long one is
 * requeued (in the log), the process exits 0, and after a restart the same robot, which
 * kept running, gets the requeued job as attempt 2.
 */
import assert from "node:assert/strict";
import {
  api,
  freePort,
  killProcess,
  type Proc,
  PROCESS_BACKENDS,
  startOrchestratorProcess,
  startRobotProcess,
  waitForEvent,
} from "./_orchestrator_process.ts";

const API_TOKEN = "drain-api-token";
const ROBOT_TOKEN = "drain-robot-token";

/** Start → Wait `ms` → End. */
function waitWorkflow(ms: number): Record<string, unknown> {
  const node = (id: string, type: string, config = {}) => ({
    node_id: id,
    node_type: type,
    config,
    position: [0, 0],
  });
  return {
    metadata: { name: `wait ${ms} ms` },
    nodes: {
      start: node("start", "StartNode"),
      wait: node("wait", "WaitNode", { duration_ms: ms }),
      end: node("end", "EndNode"),
    },
    connections: [
      {
        source_node: "start",
        source_port: "exec_out",
        target_node: "wait",
        target_port: "exec_in",
      },
      { source_node: "wait", source_port: "exec_out", target_node: "end", target_port: "exec_in" },
    ],
  };
}

for (const [name, setup] of PROCESS_BACKENDS) {
  Deno.test(`[${name}] SIGTERM drains: a short job finishes, a long one is requeued, exit 0`, async () => {
    const { env: storeEnv, cleanup } = await setup();
    const env = {
      ...storeEnv,
      ORCHESTRATOR_PORT: String(freePort()),
      ORCHESTRATOR_API_TOKEN: API_TOKEN,
      ORCHESTRATOR_ROBOT_TOKEN: ROBOT_TOKEN,
      DRAIN_TIMEOUT: "10",
    };
    let orch = await startOrchestratorProcess(env);
    const procs: Proc[] = [orch];
    try {
      const wsUrl = orch.url.replace("http", "ws") + "/ws/robot";
      const robot = await startRobotProcess(wsUrl, ROBOT_TOKEN, "robot-d", ["--max-jobs", "2"]);
      procs.push(robot);
      const submit = async (ms: number) =>
        (await api(orch.url, API_TOKEN, "POST", "/api/v1/jobs", { workflow: waitWorkflow(ms) }))
          .body.job_id as string;
      const long = await submit(600_000);
      const short = await submit(3_000);
      await waitForEvent(orch.url, API_TOKEN, `job-${long}`, ["job.started"]);
      await waitForEvent(orch.url, API_TOKEN, `job-${short}`, ["job.started"]);

      orch.child.kill("SIGTERM");
      const status = await orch.child.status;
      const out = orch.output();
      assert.equal(status.code, 0, out);
      assert.match(
        out,
        /draining: scheduler and dispatch stopped; 2 job\(s\) running; 1 robot\(s\) told; waiting up to 10 s/,
      );
      assert.match(
        out,
        new RegExp(`draining: requeued job ${long} \\(attempt 1 on robot robot-d\\)`),
      );
      assert.match(out, /drained in [\d.]+ s: 1 job\(s\) finished, 1 requeued/);
      assert.match(robot.output(), /Orchestrator draining/);

      // The robot was not told to exit: it reconnects to the next start and gets the job.
      orch = await startOrchestratorProcess(env);
      procs.push(orch);
      // The job's transitions (progress and log lines left out).
      const history = async (jobId: string) =>
        ((await api(orch.url, API_TOKEN, "GET", `/api/v1/jobs/${jobId}/events`)).body.events as {
          type: string;
          global_position: number;
          data: Record<string, unknown>;
        }[]).filter((e) => e.type !== "job.progressed" && e.type !== "job.logged");
      const shortEvents = await history(short);
      assert.deepEqual(shortEvents.map((e) => e.type), [
        "job.submitted",
        "job.queued",
        "job.dispatched",
        "job.started",
        "job.completed",
      ]);
      // The restarted node may already have given the job out again (the robot reconnects at
      // once): what the drain wrote is the first five events.
      const before = (await history(long)).slice(0, 5);
      assert.deepEqual(before.map((e) => e.type), [
        "job.submitted",
        "job.queued",
        "job.dispatched",
        "job.started",
        "job.queued",
      ]);
      assert.equal(before[4].data.reason, "orchestrator_shutdown");
      const again = await waitForEvent(
        orch.url,
        API_TOKEN,
        `job-${long}`,
        ["job.dispatched"],
        before[4].global_position,
      );
      assert.equal(again.data.robot_id, "robot-d");
      assert.equal(again.data.attempt, 2);
      // Attempt 1 was stopped on the robot (cancel_job at the requeue), not left running.
      assert.match(robot.output(), new RegExp(`job ${long} \\(wait 600000 ms\\) cancelled`));
      const robotEvents = (await api(
        orch.url,
        API_TOKEN,
        "GET",
        "/api/v1/events?stream=robot-robot-d&limit=100",
      )).body.events.map((e: { type: string; data: Record<string, unknown> }) =>
        `${e.type}${e.data.job_id ? ` ${e.data.job_id}` : ""}`
      );
      assert.equal(robotEvents.filter((t: string) => t === `robot.job_released ${long}`).length, 1);
      assert.equal(
        robotEvents.filter((t: string) => t === `robot.job_released ${short}`).length,
        1,
      );
    } finally {
      for (const p of procs) await killProcess(p);
      await cleanup();
    }
  });
}
