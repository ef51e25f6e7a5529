/**
 * Two orchestrators on one PostgreSQL schema, in one process on one injected clock: each
 * follows the other's schedule changes through the log, without a restart, and a tick fired
 * by both makes one job.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/clock.ts";
import type { ScheduleView } from "../schedules/mod.ts";
import { postgresBackend, startOrchestrator, type TestOrchestrator } from "./_harness.ts";

const WORKFLOW = { metadata: { name: "scheduled" }, nodes: {}, connections: [] };
const CONFIG = { heartbeatInterval: 600, heartbeatTimeout: 3600, sealInterval: 0 };

/** Resolves once `node`'s scheduler shows schedule `id` matching `predicate`. */
function seen(
  node: TestOrchestrator,
  id: string,
  predicate: (view: ScheduleView) => boolean,
): Promise<void> {
  return node.waitUntil(() => {
    try {
      return predicate(node.orchestrator.scheduler.get(id));
    } catch {
      return false;
    }
  });
}

Deno.test("two nodes on one PostgreSQL: a schedule added, changed, paused and removed on one is followed by the other without a restart", async () => {
  const { store, reopen, drop } = await postgresBackend.open();
  const clock = new ManualClock(Date.parse("2026-05-01T10:00:00Z"));
  const a = await startOrchestrator(store, CONFIG, clock);
  const b = await startOrchestrator(await reopen(), CONFIG, clock);
  const tick = async () => {
    clock.advance(1000);
    await Promise.all([a.orchestrator.scheduler.idle(), b.orchestrator.scheduler.idle()]);
  };
  const fires = async () =>
    (await store.readStream("schedule-n")).filter((e) => e.type === "schedule.fired")
      .map((e) => e.data.scheduled_for);
  try {
    const created = await a.api("POST", "/api/v1/schedules", {
      schedule_id: "n",
      workflow: WORKFLOW,
      cron_expression: "* * * * * *",
    });
    assert.equal(created.status, 201);
    await seen(b, "n", (v) => v.next_run === "2026-05-01T10:00:01Z");

    await tick(); // both nodes fire 10:00:01
    assert.deepEqual(await fires(), ["2026-05-01T10:00:01Z"]);
    const submitted = (await store.readAll({ limit: 1000 })).filter((e) =>
      e.type === "job.submitted"
    );
    assert.equal(submitted.length, 1);

    // Changed on B: A fires by the new expression.
    const patched = await b.api("PATCH", "/api/v1/schedules/n", {
      cron_expression: "*/5 * * * * *",
    });
    assert.equal(patched.status, 200);
    await seen(a, "n", (v) => v.cron_expression === "*/5 * * * * *");
    for (let i = 0; i < 4; i++) await tick(); // to 10:00:05
    assert.deepEqual(await fires(), ["2026-05-01T10:00:01Z", "2026-05-01T10:00:05Z"]);

    // Paused on A: neither node fires.
    assert.equal((await a.api("POST", "/api/v1/schedules/n/pause")).status, 200);
    await seen(b, "n", (v) => v.enabled === false);
    for (let i = 0; i < 5; i++) await tick(); // past 10:00:10
    assert.equal((await fires()).length, 2);

    // Resumed on B: the tick due now fires once; removed on B: A stops too.
    assert.equal((await b.api("POST", "/api/v1/schedules/n/resume")).status, 200);
    await seen(a, "n", (v) => v.enabled === true);
    await a.orchestrator.scheduler.idle();
    await b.orchestrator.scheduler.idle();
    assert.deepEqual((await fires()).slice(2), ["2026-05-01T10:00:10Z"]);
    await b.orchestrator.scheduler.remove("n");
    await a.waitUntil(() => a.orchestrator.scheduler.list().length === 0);
    for (let i = 0; i < 10; i++) await tick();
    assert.equal((await fires()).length, 3);
    const jobs = (await store.readAll({ limit: 1000 })).filter((e) => e.type === "job.submitted");
    assert.equal(jobs.length, 3);
  } finally {
    await b.stop();
    await a.stop({ keepStore: true });
    await store.close();
    await drop();
  }
});
