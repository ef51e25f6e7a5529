import assert from "node:assert/strict";
import { WORKFLOWS_DIR } from "../tests/workflow_expectations.ts";
import { FakeOrchestrator, type Received } from "./_fake_orchestrator.ts";
import type { JobResultLike, LogEntry } from "./job_result.ts";
import { RobotClient } from "./robot_client.ts";
import {
  type RobotClientOptions,
  type RobotLogger,
  RobotRegistrationError,
} from "./robot_client_options.ts";
import { executeWorkflow, type WorkflowExecutor } from "./workflow_engine.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function collectingLogger(): RobotLogger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (m: string) => void lines.push(`${level}: ${m}`);
  return { lines, debug: put("debug"), info: put("info"), warn: put("warn"), error: put("error") };
}

const workflowFile = async (name: string): Promise<unknown> =>
  JSON.parse(await Deno.readTextFile(new URL(name, WORKFLOWS_DIR)));

/** A workflow that loops until cancelled, waiting 5 ms per turn. */
const endless = {
  nodes: {
    loop: {
      node_id: "loop",
      node_type: "WhileLoopStartNode",
      config: { condition: "true", max_iterations: 1e9 },
    },
    wait: { node_id: "wait", node_type: "WaitNode", config: { duration_ms: 5 } },
    end: { node_id: "end", node_type: "WhileLoopEndNode", config: { paired_start_id: "loop" } },
  },
  connections: [
    { source_node: "loop", source_port: "body", target_node: "wait", target_port: "exec_in" },
    { source_node: "wait", source_port: "exec_out", target_node: "end", target_port: "exec_in" },
  ],
};

/** An executor that waits for `open()` before running the workflow. */
function gatedExecutor(): { executor: WorkflowExecutor; open: () => void } {
  const gate = Promise.withResolvers<void>();
  return {
    executor: async (content, options) => {
      await gate.promise;
      return executeWorkflow(content, options);
    },
    open: () => gate.resolve(),
  };
}

function assign(orch: FakeOrchestrator, jobId: string, content: unknown, extra = {}) {
  return orch.send("job_assignment", {
    job_id: jobId,
    lease_id: `lease-${jobId}`,
    attempt: 1,
    workflow: { workflow_id: "wf", name: "test workflow", version: 1, content },
    variables: {},
    priority: 1,
    timeout: 30,
    deadline: new Date(Date.now() + 60_000).toISOString(),
    ...extra,
  });
}

const forJob = (jobId: string) => (e: Received) => e.payload.job_id === jobId;

/** Runs `body` with a fake orchestrator and a started robot; always cleans both up. */
async function withRobot(
  options: Partial<RobotClientOptions> & { heartbeatInterval?: number },
  body: (ctx: { orch: FakeOrchestrator; robot: RobotClient }) => Promise<void>,
): Promise<void> {
  const orch = new FakeOrchestrator({ heartbeatInterval: options.heartbeatInterval });
  const robot = new RobotClient({
    url: orch.url,
    token: "secret",
    name: "robot-1",
    logger: collectingLogger(),
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  try {
    await robot.start();
    await body({ orch, robot });
  } finally {
    await robot.close();
    await orch.close();
  }
}

Deno.test("RobotClient registers with token, identity and capacity, then heartbeats", async () => {
  await withRobot({
    robotId: "r-1",
    capabilities: ["math"],
    tags: ["eu"],
    maxConcurrentJobs: 2,
    environment: "test",
    heartbeatInterval: 0.02,
  }, async ({ orch, robot }) => {
    const reg = await orch.next("register");
    assert.deepEqual(reg.payload, {
      robot_id: "r-1",
      name: "robot-1",
      capabilities: ["math"],
      tags: ["eu"],
      max_concurrent_jobs: 2,
      version: "0.1.0",
      environment: "test",
      active_job_ids: [],
      auth_token: "secret",
    });
    assert.equal((await robot.registered).heartbeatIntervalSeconds, 0.02);
    for (let i = 0; i < 2; i++) {
      const hb = await orch.next("heartbeat");
      assert.deepEqual(hb.payload, {
        robot_id: "r-1",
        status: "online",
        current_jobs: 0,
        active_job_ids: [],
      });
    }
    for (const e of orch.received) {
      assert.match(e.id, UUID);
      assert.match(e.timestamp, RFC3339_Z);
      assert.equal(typeof e.payload, "object");
    }
  });
});

Deno.test("RobotClient runs an assigned workflow and streams logs, progress and the result", async () => {
  await withRobot({ logBatchSize: 1 }, async ({ orch }) => {
    const assignment = assign(orch, "j1", await workflowFile("stress_task_6.json"));
    const accepted = await orch.next("job_accepted");
    assert.equal(accepted.correlation_id, assignment.id);
    assert.deepEqual(accepted.payload, { job_id: "j1", lease_id: "lease-j1" });
    const result = await orch.next("job_result", forJob("j1"));
    const r = result.payload as unknown as JobResultLike & { lease_id: string };
    assert.equal(r.status, "completed", JSON.stringify(r.error));
    assert.equal(r.lease_id, "lease-j1");
    assert.deepEqual(r.logs.map((l) => l.message), [
      "Found number greater than 20: 25",
      "Found number greater than 20: 40",
    ]);
    const logMessages = orch.received.filter((e) =>
      e.type === "job_log" && e.payload.job_id === "j1"
    );
    assert.equal(logMessages.length, 2);
    const streamed = logMessages.flatMap((e) => e.payload.entries as LogEntry[]);
    assert.deepEqual(streamed, r.logs);
    assert.ok(orch.received.indexOf(logMessages[1]) < orch.received.indexOf(result));
    const progress = orch.received.find((e) => e.type === "job_progress");
    assert.equal(progress?.payload.lease_id, "lease-j1");
    assert.equal(typeof progress?.payload.progress, "number");
  });
});

Deno.test("RobotClient rejects jobs beyond its capacity and while paused", async () => {
  const gated = gatedExecutor();
  await withRobot({ executor: gated.executor, heartbeatInterval: 0.02 }, async ({ orch }) => {
    const content = await workflowFile("stress_task_3.json");
    assign(orch, "j1", content);
    await orch.next("job_accepted", forJob("j1"));
    const second = assign(orch, "j2", content);
    const rejected = await orch.next("job_rejected", forJob("j2"));
    assert.equal(rejected.correlation_id, second.id);
    assert.match(String(rejected.payload.reason), /capacity \(1 of 1 jobs\)/);
    const busy = await orch.next("heartbeat", (e) => e.payload.current_jobs === 1);
    assert.deepEqual([busy.payload.status, busy.payload.active_job_ids], ["busy", ["j1"]]);
    gated.open();
    assert.equal((await orch.next("job_result", forJob("j1"))).payload.status, "completed");

    orch.send("pause", { robot_id: "robot-1" });
    assert.equal((await orch.next("status_update")).payload.status, "paused");
    assign(orch, "j3", content);
    assert.match(String((await orch.next("job_rejected", forJob("j3"))).payload.reason), /paused/);
    orch.send("resume", { robot_id: "robot-1" });
    assert.equal((await orch.next("status_update")).payload.status, "online");
    assign(orch, "j4", content);
    await orch.next("job_accepted", forJob("j4"));
    assert.equal((await orch.next("job_result", forJob("j4"))).payload.status, "completed");
  });
});

Deno.test("RobotClient cancel_job aborts the run and answers a cancelled result", async () => {
  await withRobot({}, async ({ orch, robot }) => {
    const started = robot.once("job_started");
    assign(orch, "j1", endless);
    await orch.next("job_accepted");
    await started;
    const cancel = orch.send("cancel_job", {
      job_id: "j1",
      lease_id: "lease-j1",
      reason: "user asked",
    });
    const result = await orch.next("job_result", forJob("j1"));
    assert.equal(result.payload.status, "cancelled");
    assert.match(String((result.payload.error as { message: string }).message), /user asked/);
    assert.notEqual(result.correlation_id, cancel.id);

    const unknown = orch.send("cancel_job", { job_id: "nope", lease_id: "x", reason: "?" });
    const error = await orch.next("error");
    assert.equal(error.payload.code, "unknown_job");
    assert.equal(error.correlation_id, unknown.id);
  });
});

Deno.test("RobotClient stops when its registration is refused", async () => {
  const orch = new FakeOrchestrator();
  const robot = new RobotClient({
    url: orch.url,
    token: "wrong",
    name: "robot-1",
    logger: collectingLogger(),
    reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  try {
    await assert.rejects(robot.start(), RobotRegistrationError);
    assert.match((await robot.closed).reason, /invalid token/);
    assert.equal(robot.state, "closed");
    assert.equal(orch.sockets.length, 1);
  } finally {
    await robot.close();
    await orch.close();
  }
});

Deno.test("RobotClient delivers a result produced while disconnected after re-registering", async () => {
  const gated = gatedExecutor();
  await withRobot({
    executor: gated.executor,
    reconnect: { initialDelayMs: 200, maxDelayMs: 400 },
    random: () => 0,
  }, async ({ orch, robot }) => {
    assign(orch, "j1", await workflowFile("stress_task_1.json"));
    await orch.next("job_accepted");
    const dropped = robot.once("disconnected");
    const reconnected = robot.once("registered", (d) => d.reconnected);
    orch.sockets[0].close(1011, "orchestrator restart");
    await dropped;
    gated.open(); // the result is produced while disconnected
    await robot.once("job_finished");
    await reconnected;
    const again = await orch.next("register", (e) => e.socket === orch.sockets[1]);
    // Finished but not yet reported: still held, so the orchestrator does not requeue it.
    assert.deepEqual(again.payload.active_job_ids, ["j1"]);
    const result = await orch.next("job_result", forJob("j1"));
    assert.equal(result.socket, orch.sockets[1]);
    assert.equal(result.payload.status, "completed");
    assert.deepEqual(
      (result.payload.logs as LogEntry[]).map((l) => l.message),
      ["The total sum is: 15"],
    );
  });
});

Deno.test("RobotClient re-registers with the jobs it is still running", async () => {
  await withRobot({}, async ({ orch, robot }) => {
    assign(orch, "j1", endless);
    await orch.next("job_accepted");
    const reconnected = robot.once("registered", (d) => d.reconnected);
    orch.sockets[0].close(1011, "orchestrator restart");
    assert.equal((await reconnected).reconnected, true);
    const again = await orch.next("register", (e) => e.socket === orch.sockets[1]);
    assert.deepEqual(again.payload.active_job_ids, ["j1"]);
    orch.send("cancel_job", { job_id: "j1", lease_id: "lease-j1", reason: "done" });
    const result = await orch.next("job_result", forJob("j1"));
    assert.equal(result.socket, orch.sockets[1]);
    assert.equal(result.payload.status, "cancelled");
  });
});

Deno.test("RobotClient drops a job the orchestrator did not resume after a reconnect", async () => {
  const orch = new FakeOrchestrator({ resumeJobIds: () => [] });
  const robot = new RobotClient({
    url: orch.url,
    token: "secret",
    name: "robot-1",
    logger: collectingLogger(),
    reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  try {
    await robot.start();
    assign(orch, "j1", endless);
    await orch.next("job_accepted");
    const finished = robot.once("job_finished");
    const reconnected = robot.once("registered", (d) => d.reconnected);
    orch.sockets[0].close(1011, "restart");
    assert.deepEqual((await reconnected).resumeJobIds, []);
    assert.equal((await finished).result.status, "cancelled");
    assert.equal(orch.received.some((e) => e.type === "job_result"), false);
  } finally {
    await robot.close();
    await orch.close();
  }
});

Deno.test("RobotClient graceful shutdown finishes running jobs, then says goodbye", async () => {
  const gated = gatedExecutor();
  await withRobot({ executor: gated.executor }, async ({ orch, robot }) => {
    const content = await workflowFile("stress_task_10.json");
    assign(orch, "j1", content);
    await orch.next("job_accepted");
    orch.send("shutdown", { robot_id: "robot-1", graceful: true });
    await robot.once("shutdown_requested");
    assign(orch, "j2", content);
    assert.match(String((await orch.next("job_rejected")).payload.reason), /shutting down/);
    gated.open();
    const result = await orch.next("job_result", forJob("j1"));
    const bye = await orch.next("disconnect");
    assert.ok(orch.received.indexOf(result) < orch.received.indexOf(bye));
    assert.equal(bye.payload.robot_id, "robot-1");
    assert.equal((await robot.closed).reason, "shutdown requested by orchestrator");
  });
});

Deno.test("RobotClient close() cancels running jobs and reports them", async () => {
  await withRobot({}, async ({ orch, robot }) => {
    assign(orch, "j1", endless);
    await orch.next("job_accepted");
    await robot.close();
    const result = await orch.next("job_result", forJob("j1"));
    assert.equal(result.payload.status, "cancelled");
    await orch.next("disconnect");
  });
});

Deno.test("RobotClient logs orchestrator errors and answers invalid frames", async () => {
  const logger = collectingLogger();
  await withRobot({ logger }, async ({ orch, robot }) => {
    const seen = robot.once("server_error");
    orch.send("error", { code: "stale_lease", message: "lease l-0 is old" }, {
      correlationId: "m-1",
    });
    assert.deepEqual(await seen, {
      code: "stale_lease",
      message: "lease l-0 is old",
      details: undefined,
      correlationId: "m-1",
    });
    assert.ok(logger.lines.includes("warn: Orchestrator error stale_lease: lease l-0 is old"));
    orch.sockets[0].send("not json");
    assert.equal((await orch.next("error")).payload.code, "invalid_message");
    orch.sockets[0].send(JSON.stringify({ type: "job_assignment", id: "a-1", payload: {} }));
    const bad = await orch.next("error");
    assert.deepEqual([bad.payload.code, bad.correlation_id], ["invalid_message", "a-1"]);
  });
});

Deno.test("RobotClient options are checked", () => {
  assert.throws(() => new RobotClient({ url: "", token: "t", name: "n" }), TypeError);
  assert.throws(
    () => new RobotClient({ url: "ws://x", token: "t", name: "n", maxConcurrentJobs: 0 }),
    RangeError,
  );
});

Deno.test("RobotClient resends a result that was never acknowledged, and stops once it is", async () => {
  await withRobot({ random: () => 0 }, async ({ orch, robot }) => {
    assign(orch, "j9", await workflowFile("stress_task_3.json"));
    const first = await orch.next("job_result", forJob("j9"));
    assert.equal(first.payload.status, "completed");
    // The orchestrator died before recording it: no acknowledgement, the socket drops.
    const reconnected = robot.once("registered", (d) => d.reconnected);
    orch.sockets[0].close(1011, "orchestrator crashed");
    const again = await orch.next("register", (e) => e.socket === orch.sockets[1]);
    assert.deepEqual(again.payload.active_job_ids, ["j9"]);
    await reconnected;
    const resent = await orch.next("job_result", (e) => e.socket === orch.sockets[1]);
    assert.equal(resent.payload.job_id, "j9");
    assert.equal(resent.id, first.id);
    orch.send("job_result_ack", { job_id: "j9", lease_id: "lease-j9", status: "completed" }, {
      socket: orch.sockets[1],
    });
    await robot.once("message", (m) => m.type === "job_result_ack");
    orch.sockets[1].close(1011, "again");
    const third = await orch.next("register", (e) => e.socket === orch.sockets[2]);
    assert.deepEqual(third.payload.active_job_ids, []);
  });
});

Deno.test("RobotClient with several URLs moves to the next node when its node goes away, keeping its jobs", async () => {
  const a = new FakeOrchestrator();
  const b = new FakeOrchestrator();
  const robot = new RobotClient({
    url: a.url,
    urls: [a.url, b.url],
    token: "secret",
    name: "robot-1",
    logger: collectingLogger(),
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
  });
  let aOpen = true;
  try {
    await robot.start();
    assert.equal(robot.url, a.url);
    await a.next("register");
    assign(a, "j1", endless);
    await a.next("job_accepted");
    aOpen = false;
    await a.close(); // node a goes away: the robot must go to b, with its job
    const reg = await b.next("register");
    assert.deepEqual(reg.payload.active_job_ids, ["j1"]);
    assert.equal(robot.url, b.url);
  } finally {
    await robot.close();
    if (aOpen) await a.close();
    await b.close();
  }
});
