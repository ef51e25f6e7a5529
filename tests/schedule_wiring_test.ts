/**
 * Schedules wired into the running orchestrator: created over the API, their ticks make
 * real jobs that a robot receives.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { startOrchestrator } from "./_harness.ts";

Deno.test("a schedule created over the API submits a job on each tick, once per tick", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0, 500));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    heartbeatInterval: 600,
    heartbeatTimeout: 3600,
  }, clock);
  try {
    const created = await o.api("POST", "/api/v1/schedules", {
      schedule_id: "every-second",
      frequency: "cron",
      cron_expression: "* * * * * *",
      timezone: "Europe/Paris",
      workflow: { nodes: {} },
      priority: 2,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const next = await o.api(
      "GET",
      "/api/v1/schedules/every-second/next-runs?after=2026-06-01T12:00:00Z&count=2",
    );
    assert.deepEqual(next.body.next_runs, ["2026-06-01T12:00:01Z", "2026-06-01T12:00:02Z"]);
    for (let i = 0; i < 3; i++) clock.advance(1000);
    await o.waitUntil(() => o.orchestrator.jobs.list().jobs.length === 3);
    const { jobs } = o.orchestrator.jobs.list();
    assert.equal(jobs.length, 3);
    assert.ok(jobs.every((j) => j.priority === "high" && j.status === "queued"));
    const bad = await o.api("POST", "/api/v1/schedules", {
      frequency: "cron",
      cron_expression: "0 0 30 2 *",
      timezone: "UTC",
      workflow: { nodes: {} },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, "cron_expression");
  } finally {
    await o.stop();
  }
});
