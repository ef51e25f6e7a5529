// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * `frequency: "once"` through a real orchestrator and its HTTP API (both stores) on an
 * injected clock: with no `start_at` (the creation time) or a `start_at` at most the misfire
 * grace (5 s) in the past it fires at once, exactly one job; further in the past its tick is
 * missed and follows the misfire policy (`run_once` fires it as a catch-up, `skip` runs
 * none); in the future it fires at that instant, not a millisecond earlier; moving a fired
 * schedule's `start_at` to now fires it again; a restart fires nothing more.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/clock.ts";
import type { SqlEventStore } from "../events/mod.ts";
import { BACKENDS, startOrchestrator, type TestOrchestrator } from "./_harness.ts";

const WORKFLOW = { metadata: { name: "once" }, nodes: {}, connections: [] };
const START = Date.parse("2026-05-04T10:00:00Z");
const CONFIG = { heartbeatInterval: 600, heartbeatTimeout: 3600, sealInterval: 0 };
const at = (seconds: number) => new Date(START + seconds * 1000).toISOString().replace(".000", "");

/** The schedule's decisions as recorded: `[type, scheduled_for, catch_up]`. */
async function decisions(store: SqlEventStore, id: string): Promise<unknown[][]> {
  return (await store.readStream(`schedule-${id}`))
    .filter((e) => e.type.startsWith("schedule.") && e.data.scheduled_for !== undefined)
    .map((e) => [e.type, e.data.scheduled_for, e.data.catch_up]);
}

async function create(o: TestOrchestrator, body: Record<string, unknown>): Promise<any> {
  const res = await o.api("POST", "/api/v1/schedules", { workflow: WORKFLOW, ...body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  await o.orchestrator.scheduler.idle();
  return res.body;
}

for (const backend of BACKENDS) {
  Deno.test(`once (${backend.name}): fires at once when start_at is now or within the grace, else as the misfire policy says`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(START);
    let o = await startOrchestrator(store, CONFIG, clock);
    try {
      const now = await create(o, { schedule_id: "now", frequency: "once" });
      assert.equal(now.start_at, at(0));
      await o.waitUntil(() => o.orchestrator.scheduler.get("now").last_run !== null);
      await o.orchestrator.scheduler.idle();
      assert.deepEqual(await decisions(store, "now"), [["schedule.fired", at(0), false]]);

      await create(o, { schedule_id: "recent", frequency: "once", start_at: at(-2) });
      await create(o, { schedule_id: "late", frequency: "once", start_at: at(-10) });
      await create(o, {
        schedule_id: "late-skip",
        frequency: "once",
        start_at: at(-10),
        misfire_policy: "skip",
      });
      await create(o, { schedule_id: "later", frequency: "once", start_at: at(30) });
      await o.waitUntil(() =>
        o.orchestrator.scheduler.get("recent").last_run !== null &&
        o.orchestrator.scheduler.get("late").last_run !== null
      );
      await o.orchestrator.scheduler.idle();
      assert.deepEqual(await decisions(store, "recent"), [["schedule.fired", at(-2), false]]);
      assert.deepEqual(await decisions(store, "late"), [["schedule.fired", at(-10), true]]);
      assert.deepEqual(await decisions(store, "late-skip"), []);
      assert.deepEqual(await decisions(store, "later"), []);

      const view = (await o.api("GET", "/api/v1/schedules/now")).body;
      assert.equal(view.last_run, at(0));
      assert.equal(view.next_run, null);
      assert.equal((await o.api("GET", "/api/v1/schedules/later")).body.next_run, at(30));

      // In the future: not a millisecond early, then once.
      clock.advance(30_000 - 1);
      await o.orchestrator.scheduler.idle();
      assert.deepEqual(await decisions(store, "later"), []);
      clock.advance(1);
      await o.waitUntil(() => o.orchestrator.scheduler.get("later").last_run !== null);
      await o.orchestrator.scheduler.idle();
      assert.deepEqual(await decisions(store, "later"), [["schedule.fired", at(30), false]]);

      // Moving a fired schedule's start_at to now: it runs once more, at the new time.
      const moved = await o.api("PATCH", "/api/v1/schedules/now", { start_at: at(30) });
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      await o.waitUntil(() => o.orchestrator.scheduler.get("now").last_run === at(30));
      await o.orchestrator.scheduler.idle();
      assert.deepEqual(await decisions(store, "now"), [
        ["schedule.fired", at(0), false],
        ["schedule.fired", at(30), false],
      ]);
      const jobs = () => o.orchestrator.jobs.list({ limit: 100 }).jobs.length;
      assert.equal(jobs(), 5);

      // A restart replays the fires and makes no new one.
      await o.stop({ keepStore: true });
      clock.advance(60_000);
      o = await startOrchestrator(store, CONFIG, clock);
      await o.orchestrator.scheduler.idle();
      assert.equal(jobs(), 5);
      for (const id of ["now", "recent", "late", "later"]) {
        assert.equal((await decisions(store, id)).length, id === "now" ? 2 : 1, id);
      }
      assert.deepEqual(await decisions(store, "late-skip"), []);
    } finally {
      await o.stop({ keepStore: true });
      await store.close();
      await drop();
    }
  });
}
