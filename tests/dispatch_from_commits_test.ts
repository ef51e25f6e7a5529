/**
 * Dispatch from commits: a job this node queued is dispatched right after its own append,
 * without waiting for the log subscription to read the append back; the read-back then
 * finds the job already dispatched and changes nothing. PostgreSQL only: PGlite's
 * subscription is handed the appends directly, so there is no read-back to hold up.
 */
import assert from "node:assert/strict";
import { postgresBackend, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";
import type { SqlEventStore } from "../events/mod.ts";

const WORKFLOW = { metadata: { name: "from-commits" }, nodes: {}, connections: [] };

/** Holds every read of the log (`readAll`, `readAllPage`: the subscription's) until `open()`. */
function gateReads(store: SqlEventStore) {
  const originals = { readAll: store.readAll, readAllPage: store.readAllPage };
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let held = 0;
  store.readAll = async (o) => {
    held++;
    await opened;
    return await originals.readAll.call(store, o);
  };
  store.readAllPage = async (o) => {
    held++;
    await opened;
    return await originals.readAllPage.call(store, o);
  };
  return {
    open: () => {
      Object.assign(store, originals);
      open();
    },
    get held() {
      return held;
    },
  };
}

Deno.test("[postgres] jobs are dispatched from their commits while the log's read-back is held, by priority, once each", async () => {
  const { store, drop } = await postgresBackend.open();
  const o = await startOrchestrator(store, { heartbeatInterval: 30, heartbeatTimeout: 120 });
  const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-commits");
  let gate: ReturnType<typeof gateReads> | undefined;
  try {
    await robot.register({ max_concurrent_jobs: 1 });
    // Everything so far read back, then the reads are held.
    await o.orchestrator.settled(
      (await store.readStream("robot-robot-commits")).at(-1)!.globalPosition,
    );
    const positionBefore = o.orchestrator.core.position;
    gate = gateReads(store);
    const submit = (priority: number) =>
      fetch(`${o.url}/api/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${o.apiToken}`, "content-type": "application/json" },
        body: JSON.stringify({ workflow: WORKFLOW, priority }),
      }).then(async (res) => ({ status: res.status, body: await res.json() }));

    // The first job goes to the robot's only slot, though nothing was read back.
    const answers = [submit(1)];
    const first = await robot.next("job_assignment");
    assert.equal(first.payload.priority, 1);
    assert.equal(o.orchestrator.core.position, positionBefore, "nothing was applied from the log");
    assert.equal(o.orchestrator.core.queue.has(String(first.payload.job_id)), false);

    // Two more wait for the slot, committed but not read back: low first, then critical.
    answers.push(submit(0), submit(3));
    await new Promise<void>((resolve, reject) => {
      const signal = AbortSignal.timeout(15_000);
      const off = o.orchestrator.core.onCommittedQueue(() => check());
      const check = () => {
        if (o.orchestrator.core.committedQueue.size !== 2) return;
        off();
        resolve();
      };
      signal.addEventListener("abort", () => {
        off();
        reject(new Error(`committed queue: ${[...o.orchestrator.core.committedQueue.keys()]}`));
      });
      check();
    });

    // The robot finishes; the critical job is next, then the low one.
    const finish = (m: { id: string; payload: Record<string, unknown> }) => {
      robot.send("job_accepted", { job_id: m.payload.job_id, lease_id: m.payload.lease_id }, m.id);
      robot.send("job_result", {
        job_id: m.payload.job_id,
        lease_id: m.payload.lease_id,
        status: "completed",
        execution_time: 0,
        outputs: {},
      });
    };
    finish(first);
    const second = await robot.next("job_assignment");
    assert.equal(second.payload.priority, 3, "critical before low");
    finish(second);
    const third = await robot.next("job_assignment");
    assert.equal(third.payload.priority, 0);
    assert.ok(gate.held > 0, "the subscription was held meanwhile");
    assert.equal(o.orchestrator.core.position, positionBefore, "still nothing read back");

    // Reads resume: the read-back applies what was committed and changes nothing.
    gate.open();
    finish(third);
    const ids = [first, second, third].map((m) => String(m.payload.job_id));
    for (const answer of await Promise.all(answers)) {
      assert.equal(answer.status, 201);
      assert.ok(ids.includes(answer.body.job_id));
    }
    for (const id of ids) await o.waitForJob(id, ["completed"]);
    assert.equal(o.orchestrator.core.queue.size, 0);
    assert.equal(o.orchestrator.core.committedQueue.size, 0);
    for (const id of ids) {
      const events = await store.readStream(`job-${id}`);
      const types = events.map((e) => e.type);
      assert.equal(types.filter((t) => t === "job.dispatched").length, 1, types.join());
      assert.equal(types.at(-1), "job.completed");
    }
  } finally {
    gate?.open();
    robot.kill();
    await o.stop();
    await drop();
  }
});

Deno.test("[postgres] a job dispatched from its commit goes to a robot of its own org", async () => {
  const { store, drop } = await postgresBackend.open();
  const o = await startOrchestrator(store, { heartbeatInterval: 30, heartbeatTimeout: 120 });
  const token = async (role: string) => {
    const res = await o.api("POST", "/api/v1/tokens", { org_id: "acme", role });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return String(res.body.token);
  };
  const operator = await token("operator");
  // Two robots with room: one of the default org, one of org acme.
  const outsider = new RawRobot(o.wsUrl, o.robotToken, "robot-default-org");
  const insider = new RawRobot(o.wsUrl, await token("robot"), "robot-acme");
  let gate: ReturnType<typeof gateReads> | undefined;
  try {
    await outsider.register();
    await insider.register();
    await o.waitUntil(() =>
      o.orchestrator.core.robotStatus("robot-default-org") === "online" &&
      o.orchestrator.core.robotStatus("robot-acme") === "online"
    );
    gate = gateReads(store);
    const answer = fetch(`${o.url}/api/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
      body: JSON.stringify({ workflow: WORKFLOW }),
    }).then(async (res) => ({ status: res.status, body: await res.json() }));
    const assignment = await insider.next("job_assignment");
    const jobId = String(assignment.payload.job_id);
    // Decided before any read-back, and on the robot of the job's org.
    assert.equal(o.orchestrator.core.orgs.orgOf(`job-${jobId}`), "acme");
    assert.equal(o.orchestrator.core.jobs.get(jobId)?.snapshot.context.robot_id, "robot-acme");
    gate.open();
    const { status, body } = await answer;
    assert.equal(status, 201);
    assert.equal(body.job_id, jobId);
    assert.equal(
      o.orchestrator.core.robots.get("robot-default-org")?.snapshot.context
        .current_jobs.length,
      0,
    );
  } finally {
    gate?.open();
    outsider.kill();
    insider.kill();
    await o.stop();
    await drop();
  }
});

Deno.test("[postgres] a cancel decided while the job's dispatch is being written asks the robot to stop instead of ending the job behind its back", async () => {
  const { store, drop } = await postgresBackend.open();
  const o = await startOrchestrator(store, { heartbeatInterval: 30, heartbeatTimeout: 120 });
  const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-race");
  // Holds the append that writes a dispatch until `release()`.
  const append = store.append;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const dispatchHeld = new Promise<void>((resolve) => (held = resolve));
  store.append = async (writes, options) => {
    if (writes.some((w) => w.events.some((e) => e.type === "job.dispatched"))) {
      held();
      await released;
    }
    return await append.call(store, writes, options);
  };
  try {
    await robot.register({ max_concurrent_jobs: 1 });
    const { body } = await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW });
    const jobId = String(body.job_id);
    await dispatchHeld;
    // The dispatch is decided and being written: the job still reads as queued.
    assert.equal(o.orchestrator.jobs.view(jobId)?.status, "queued");
    const cancel = o.api("POST", `/api/v1/jobs/${jobId}/cancel`);
    release();
    const assignment = await robot.next("job_assignment");
    const stop = await robot.next("cancel_job");
    assert.equal(stop.payload.job_id, jobId);
    assert.equal(stop.payload.lease_id, assignment.payload.lease_id);
    const answer = await cancel;
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const types = (await store.readStream(`job-${jobId}`)).map((e) => e.type);
    assert.deepEqual(types, [
      "job.submitted",
      "job.queued",
      "job.dispatched",
      "job.cancel_requested",
    ]);
  } finally {
    store.append = append;
    release();
    robot.kill();
    await o.stop();
    await drop();
  }
});
