/**
 * `deno task start` as a real process on each backend: tokens on first start, SIGKILL,
 * start again, and everything comes back from the log.
 */
import assert from "node:assert/strict";
import { RobotClient } from "../robot/robot_client.ts";
import {
  api as apiAt,
  killProcess,
  type OrchestratorProc as Proc,
  PROCESS_BACKENDS,
  startOrchestratorProcess as startProcess,
  waitForEvent as waitForEventAt,
} from "./_orchestrator_process.ts";
import { WORKFLOWS_DIR } from "./workflow_expectations.ts";

const api = (p: Proc, token: string, method: string, path: string, body?: unknown) =>
  apiAt(p.url, token, method, path, body);

const waitForEvent = (p: Proc, token: string, stream: string, types: string[]) =>
  waitForEventAt(p.url, token, stream, types);

const waitForEnd = async (p: Proc, token: string, jobId: string): Promise<string> =>
  (await waitForEvent(p, token, `job-${jobId}`, [
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.timed_out",
  ])).type;

for (const [name, setup] of PROCESS_BACKENDS) {
  Deno.test(`[${name}] SIGKILL and restart: jobs, robots and metrics come back from the log`, async () => {
    const { env, cleanup } = await setup();
    let proc = await startProcess(env);
    try {
      const tokensFile = `${env.DATA_DIR}/tokens.json`;
      assert.equal((await Deno.stat(tokensFile)).mode! & 0o777, 0o600);
      const tokens = JSON.parse(await Deno.readTextFile(tokensFile));
      assert.ok(!proc.output().includes(tokens.api_token), "the API token was printed");
      assert.ok(!proc.output().includes(tokens.robot_token), "the robot token was printed");
      const robot = new RobotClient({
        url: proc.url.replace("http", "ws") + "/ws/robot",
        token: tokens.robot_token,
        name: "robot-k",
        logger: { debug() {}, info() {}, warn() {}, error() {} },
      });
      await robot.start();
      const wf = JSON.parse(await Deno.readTextFile(new URL("stress_task_6.json", WORKFLOWS_DIR)));
      const done =
        (await api(proc, tokens.api_token, "POST", "/api/v1/jobs", { workflow: wf })).body.job_id;
      assert.equal(await waitForEnd(proc, tokens.api_token, done), "job.completed");
      await robot.close();
      await waitForEvent(proc, tokens.api_token, "robot-robot-k", ["robot.disconnected"]);
      const queued = (await api(proc, tokens.api_token, "POST", "/api/v1/jobs", {
        workflow: wf,
        priority: "low",
      })).body.job_id;
      const snapshot = async (p: Proc) => ({
        done: (await api(p, tokens.api_token, "GET", `/api/v1/jobs/${done}`)).body,
        queued: (await api(p, tokens.api_token, "GET", `/api/v1/jobs/${queued}`)).body,
        robots: (await api(p, tokens.api_token, "GET", "/api/v1/robots")).body.robots
          .map((r: { robot_id: string; status: string }) => [r.robot_id, r.status]),
        metrics: (await api(p, tokens.api_token, "GET", "/api/v1/metrics/dashboard")).body,
        events:
          (await api(p, tokens.api_token, "GET", "/api/v1/events?limit=1000")).body.events.length,
      });
      const before = await snapshot(proc);
      assert.equal(before.done.status, "completed");
      assert.equal(before.queued.status, "queued");
      await killProcess(proc);
      proc = await startProcess(env);
      const after = await snapshot(proc);
      assert.deepEqual(after, before);
      assert.equal(after.metrics.completed_jobs_today, 1);
      assert.equal(after.metrics.pending_jobs, 1);
      assert.deepEqual(after.robots, [["robot-k", "offline"]]);
    } finally {
      await killProcess(proc);
      await cleanup();
    }
  });
}
