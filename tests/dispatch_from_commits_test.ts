/**
 * Dispatch from commits: a job this node queued is dispatched right after its own append,
 * without waiting for the log subscription to read the append back; the read-back then
 * finds the job already dispatched and changes nothing. PostgreSQL only: PGlite's
 * subscription is handed the appends directly, so there is no read-back to hold up.
 */
import assert from "node:assert/strict";
import { postgresBackend, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";
import type { ReadAllOptions } from "../events/mod.ts";

const WORKFLOW = { metadata: { name: "from-commits" }, nodes: {}, connections: [] };

/** Holds every `readAll` of the store (the subscription's reads) until `open()`. */
function gateReads(store: { readAll(o?: ReadAllOptions): Promise<unknown> }) {
  const original = store.readAll.bind(store);
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let held = 0;
  store.readAll = async (o?: ReadAllOptions) => {
    held++;
    await opened;
    return await original(o);
  };
  return {
    open: () => {
      store.readAll = original;
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
  try {
    await robot.register({ max_concurrent_jobs: 1 });
    await o.waitUntil(() => o.orchestrator.core.robotStatus("robot-commits") === "online");
    const positionBefore = o.orchestrator.core.position;
    const gate = gateReads(store);
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
    await new Promise<void>((resolve) => {
      const check = () => o.orchestrator.core.committedQueue.size === 2 && (off(), resolve());
      const off = o.orchestrator.core.onCommittedQueue(check);
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
    robot.kill();
    await o.stop();
    await drop();
  }
});
