/**
 * Rebuild and point-in-time replay: folding the log into fresh read models gives exactly
 * the live ones; stopping at an instant gives the state as it stood then.
 */
import assert from "node:assert/strict";
import { replayLog, summarizeReadModels } from "../engine/mod.ts";
import { RobotClient } from "../robot/robot_client.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { WORKFLOWS_DIR } from "./workflow_expectations.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] replaying the whole log gives exactly the live read models; --until gives the past`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    const robot = new RobotClient({
      url: t.wsUrl,
      token: t.robotToken,
      name: "robot-r",
      maxConcurrentJobs: 2,
      logger: quiet,
    });
    try {
      await robot.start();
      const wf = JSON.parse(await Deno.readTextFile(new URL("stress_task_2.json", WORKFLOWS_DIR)));
      const first = (await t.api("POST", "/api/v1/jobs", { workflow: wf })).body.job_id;
      await t.waitForJob(first, ["completed"]);
      const firstEvents = await store.readStream(`job-${first}`);
      const cut = firstEvents[firstEvents.length - 1].recordedAt;
      // Everything after the cut is recorded strictly later (database clock).
      const later: string[] = [];
      for (let i = 0; i < 5; i++) {
        later.push(
          (await t.api("POST", "/api/v1/jobs", { workflow: wf, priority: i % 4 })).body.job_id,
        );
      }
      await Promise.all(later.map((id) => t.waitForJob(id, ["completed"])));
      await robot.close();
      await t.waitUntil(() => t.orchestrator.robot("robot-r")?.status === "offline");
      await t.orchestrator.subscription!.caughtUp();

      const live = summarizeReadModels(t.orchestrator.core, t.orchestrator.core.clock.now());
      const replayed = await replayLog(store);
      assert.deepEqual(replayed.state, live);
      assert.equal(replayed.state.jobs.length, 6);
      assert.equal(replayed.events, (await store.readAll({ limit: 100_000 })).length);

      const past = await replayLog(store, { until: cut });
      if (past.state.jobs.length === 1) {
        assert.equal(past.state.jobs[0].job_id, first);
        assert.equal(past.state.jobs[0].status, "completed");
        assert.equal(past.state.dashboard.completed_jobs_today, 1);
      } else {
        // Same-millisecond commits can put a later submission at the cut itself.
        assert.ok(past.state.jobs.every((j) => j.job_id === first || j.status === "queued"));
      }
      const viaApi = await t.api("GET", `/api/v1/audit/state?at=${cut.toISOString()}`);
      assert.equal(viaApi.status, 200);
      assert.deepEqual(
        viaApi.body.jobs.map((j: { job_id: string }) => j.job_id),
        past.state.jobs.map((j) => j.job_id),
      );
      const before = await replayLog(store, {
        until: new Date(firstEvents[0].recordedAt.getTime() - 1),
      });
      assert.equal(before.state.jobs.length, 0);
      const bad = await t.api("GET", "/api/v1/audit/state?at=yesterday");
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.field, "at");
      const lag = (await t.api("GET", "/api/v1/metrics/projections")).body;
      assert.equal(lag.lag_events, 0);
      assert.equal(lag.checkpoint, t.orchestrator.core.position);
    } finally {
      await robot.close();
      await t.stop();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] Idempotency-Key: a retried submission is the same job, written once`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    try {
      const post = (key: string, body: unknown) =>
        fetch(`${t.url}/api/v1/jobs`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${t.apiToken}`,
            "content-type": "application/json",
            "idempotency-key": key,
          },
          body: JSON.stringify(body),
        });
      const body = { workflow: { nodes: {} }, variables: { a: 1, b: [1, 2] } };
      const first = await post("order-42", body);
      assert.equal(first.status, 201);
      const job = await first.json();
      const again = await post("order-42", {
        variables: { b: [1, 2], a: 1 },
        workflow: { nodes: {} },
      });
      assert.equal(again.status, 200);
      assert.equal(again.headers.get("idempotent-replayed"), "true");
      assert.equal((await again.json()).job_id, job.job_id);
      const racing = await Promise.all([1, 2, 3, 4].map(() => post("order-43", body)));
      const ids = new Set(await Promise.all(racing.map(async (r) => (await r.json()).job_id)));
      assert.equal(ids.size, 1);
      assert.deepEqual(racing.map((r) => r.status).sort(), [200, 200, 200, 201]);
      const other = await post("order-42", { workflow: { nodes: {} }, variables: { a: 2 } });
      assert.equal(other.status, 422);
      assert.equal((await other.json()).error.field, "Idempotency-Key");
      const submitted = (await store.readAll({ limit: 1000 })).filter((e) =>
        e.type === "job.submitted"
      );
      assert.equal(submitted.length, 2);
    } finally {
      await t.stop();
      await drop();
    }
  });
}
