/**
 * `deno task start` as a real process on each backend: tokens on first start, SIGKILL,
 * start again, and everything comes back from the log.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { RobotClient } from "../robot/robot_client.ts";
import { TEST_DATABASE_URL } from "./_harness.ts";
import { WORKFLOWS_DIR } from "./workflow_expectations.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

interface Proc {
  child: Deno.ChildProcess;
  url: string;
  output: () => string;
}

async function startProcess(env: Record<string, string>): Promise<Proc> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: { ...env, ORCHESTRATOR_HOST: "127.0.0.1", ORCHESTRATOR_PORT: "0", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const url = await new Promise<string>((resolve, reject) => {
    const reader = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) {
        text += decoder.decode(chunk);
        const m = text.match(/listening on (http:\/\/[\d.]+:\d+)/);
        if (m && /; ready/.test(text)) resolve(m[1]);
      }
      reject(new Error(`orchestrator exited before listening:\n${text}`));
    };
    reader(child.stdout).catch(reject);
    reader(child.stderr).catch(() => {});
  });
  return { child, url, output: () => text };
}

async function api(p: Proc, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(p.url + path, {
    method,
    headers: { authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** Follows the job's stream with the events API's long poll until a terminal event. */
/** Follows a stream with the events API's long poll until one of `types` appears. */
async function waitForEvent(
  p: Proc,
  token: string,
  stream: string,
  types: string[],
): Promise<string> {
  let after = 0;
  for (let i = 0; i < 100; i++) {
    const path = `/api/v1/events?stream=${stream}&after=${after}&wait=10`;
    const page = (await api(p, token, "GET", path)).body;
    for (const e of page.events) if (types.includes(e.type)) return e.type;
    after = page.next_after;
  }
  throw new Error(`no ${types} in ${stream}`);
}

const waitForEnd = (p: Proc, token: string, jobId: string) =>
  waitForEvent(p, token, `job-${jobId}`, [
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.timed_out",
  ]);

const backends: [
  string,
  () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>,
][] = [
  ["pglite", async () => {
    const dir = await Deno.makeTempDir({ prefix: "orch-restart-" });
    return { env: { DATA_DIR: dir }, cleanup: () => Deno.remove(dir, { recursive: true }) };
  }],
  ["postgres", async () => {
    const dir = await Deno.makeTempDir({ prefix: "orch-restart-" });
    const schema = `r_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    return {
      env: { DATA_DIR: dir, DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema },
      cleanup: async () => {
        const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
        await sql.unsafe(`drop schema if exists ${schema} cascade`);
        await sql.end();
        await Deno.remove(dir, { recursive: true });
      },
    };
  }],
];

for (const [name, setup] of backends) {
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
      proc.child.kill("SIGKILL");
      await proc.child.status;
      proc = await startProcess(env);
      const after = await snapshot(proc);
      assert.deepEqual(after, before);
      assert.equal(after.metrics.completed_jobs_today, 1);
      assert.equal(after.metrics.pending_jobs, 1);
      assert.deepEqual(after.robots, [["robot-k", "offline"]]);
    } finally {
      proc.child.kill("SIGKILL");
      await proc.child.status;
      await proc.child.stdout.cancel().catch(() => {});
      await cleanup();
    }
  });
}
