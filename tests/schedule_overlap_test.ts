// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * Overlap policies through a real orchestrator (both stores, API, real jobs) on an injected
 * clock: `skip` and `queue_one` while the previous run is active, decisions recorded so a
 * restart reproduces them, and a held tick fired when the previous run ends.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/clock.ts";
import { openEventStore, type SqlEventStore } from "../events/mod.ts";
import { type ScheduledJobInput, Scheduler } from "../schedules/mod.ts";
import { BACKENDS, startOrchestrator, type TestOrchestrator } from "./_harness.ts";

const WORKFLOW = { metadata: { name: "scheduled" }, nodes: {}, connections: [] };
const START = Date.parse("2026-04-01T09:00:00Z");
const CONFIG = { heartbeatInterval: 600, heartbeatTimeout: 3600, sealInterval: 0 };
const at = (seconds: number) => new Date(START + seconds * 1000).toISOString().replace(".000", "");

/** The schedule's decisions as recorded: `[type, scheduled_for, extra]`. */
async function decisions(store: SqlEventStore, id: string): Promise<string[][]> {
  return (await store.readStream(`schedule-${id}`))
    .filter((e) => e.type !== "schedule.added")
    .map((e) => {
      const d = e.data as Record<string, any>;
      const extra = e.type === "schedule.skipped" ? d.reason : d.queued ? "queued" : "";
      return [e.type, d.scheduled_for, extra];
    });
}

/** Moves the clock one second and waits for the scheduler's work. */
async function second(o: TestOrchestrator, clock: ManualClock): Promise<void> {
  clock.advance(1000);
  await o.orchestrator.scheduler.idle();
}

/** The job of the schedule's last fire. */
function jobOf(o: TestOrchestrator, id: string): string {
  return o.orchestrator.scheduler.get(id).last_job_id!;
}

for (const backend of BACKENDS) {
  Deno.test(`overlap (${backend.name}): skip records the ticks met while the previous run is active and fires again once it ended`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(START);
    const o = await startOrchestrator(store, CONFIG, clock);
    try {
      const created = await o.api("POST", "/api/v1/schedules", {
        schedule_id: "s",
        workflow: WORKFLOW,
        cron_expression: "* * * * * *",
        overlap_policy: "skip",
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.overlap_policy, "skip");
      await second(o, clock); // tick 1 fires; its job stays queued (no robot): active
      const first = jobOf(o, "s");
      assert.equal(o.orchestrator.jobs.view(first)?.status, "queued");
      await second(o, clock);
      await second(o, clock);
      assert.equal((await o.api("POST", `/api/v1/jobs/${first}/cancel`)).status, 200);
      await second(o, clock); // the previous run ended: tick 4 fires
      assert.deepEqual(await decisions(store, "s"), [
        ["schedule.fired", at(1), ""],
        ["schedule.skipped", at(2), "overlap"],
        ["schedule.skipped", at(3), "overlap"],
        ["schedule.fired", at(4), ""],
      ]);
      const skipped = (await store.readStream("schedule-s")).find((e) =>
        e.type === "schedule.skipped"
      )!;
      assert.equal(skipped.data.active_job_id, first);
      assert.equal(o.orchestrator.jobs.list().jobs.length, 2);
      assert.equal((await o.api("GET", "/api/v1/schedules/s")).body.last_run, at(4));
    } finally {
      await o.stop({ keepStore: true });
      await store.close();
      await drop();
    }
  });

  Deno.test(`overlap (${backend.name}): queue_one holds one tick, fires it when the previous run ends, and a restart reproduces the decisions`, async () => {
    const { store, reopen, drop } = await backend.open();
    const clock = new ManualClock(START);
    let o = await startOrchestrator(store, CONFIG, clock);
    let current = store;
    try {
      const created = await o.api("POST", "/api/v1/schedules", {
        schedule_id: "q",
        workflow: WORKFLOW,
        cron_expression: "* * * * * *",
        overlap_policy: "queue_one",
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      await second(o, clock); // tick 1 fires
      const first = jobOf(o, "q");
      await second(o, clock); // tick 2 is held
      await second(o, clock); // tick 3: one is held already
      assert.equal((await o.api("GET", "/api/v1/schedules/q")).body.pending_run, at(2));
      assert.equal(o.orchestrator.jobs.list().jobs.length, 1);
      // The previous run ends: the held tick fires at once, without waiting for a tick.
      assert.equal((await o.api("POST", `/api/v1/jobs/${first}/cancel`)).status, 200);
      await o.waitUntil(() => o.orchestrator.jobs.list().jobs.length === 2);
      await o.orchestrator.scheduler.idle();
      const second2 = jobOf(o, "q");
      assert.notEqual(second2, first);
      assert.equal((await o.api("GET", "/api/v1/schedules/q")).body.pending_run, null);
      await second(o, clock); // tick 4 is held behind the run of tick 2
      const before = await decisions(current, "q");
      assert.deepEqual(before, [
        ["schedule.fired", at(1), ""],
        ["schedule.queued", at(2), ""],
        ["schedule.skipped", at(3), "queue_full"],
        ["schedule.fired", at(2), "queued"],
        ["schedule.queued", at(4), ""],
      ]);

      // Restart within the tick: the decisions are replayed, none taken again.
      await o.stop({ keepStore: true });
      await current.close();
      current = await reopen();
      clock.advance(300);
      o = await startOrchestrator(current, CONFIG, clock);
      assert.deepEqual(await decisions(current, "q"), before);
      const view = (await o.api("GET", "/api/v1/schedules/q")).body;
      assert.equal(view.pending_run, at(4));
      assert.equal(view.last_job_id, second2);
      assert.equal(o.orchestrator.jobs.list().jobs.length, 2);
      assert.equal((await o.api("POST", `/api/v1/jobs/${second2}/cancel`)).status, 200);
      await o.waitUntil(() => o.orchestrator.jobs.list().jobs.length === 3);
      await o.orchestrator.scheduler.idle();
      assert.deepEqual((await decisions(current, "q")).slice(5), [
        ["schedule.fired", at(4), "queued"],
      ]);
      const jobs = o.orchestrator.jobs.list({ order: "asc" }).jobs;
      assert.deepEqual(jobs.map((j) => j.status), ["cancelled", "cancelled", "queued"]);
    } finally {
      await o.stop({ keepStore: true });
      await current.close();
      await drop();
    }
  });
}

Deno.test("overlap: run_all with skip after a downtime makes one catch-up run and records the rest as skipped; a restart adds nothing", async () => {
  const store = await openEventStore({ dataDir: "memory://" });
  const clock = new ManualClock(Date.parse("2026-03-02T08:28:50Z"));
  const jobs: ScheduledJobInput[] = [];
  const active = new Set<string>();
  const make = () =>
    new Scheduler({
      store,
      clock,
      submitJob: (input) => {
        if (!jobs.some((j) => j.job_id === input.job_id)) jobs.push(input);
        active.add(input.job_id);
        return Promise.resolve({ job_id: input.job_id });
      },
      jobActive: (id) => active.has(id),
    });
  let s = make();
  await s.start();
  await s.add({
    schedule_id: "m",
    workflow: WORKFLOW,
    cron_expression: "* * * * *",
    misfire_policy: "run_all",
    catch_up_window: 7200,
    overlap_policy: "skip",
  });
  clock.advance(40_000); // 08:29:30, fires 08:29:00
  await s.idle();
  await s.stop();
  active.clear(); // the 08:29 run ended while the orchestrator was down
  clock.advance(Date.parse("2026-03-02T10:21:30Z") - clock.now());
  s = make();
  await s.start();
  assert.deepEqual(jobs.map((j) => j.scheduled_for), [
    "2026-03-02T08:29:00Z",
    "2026-03-02T08:30:00Z",
  ]);
  const events = await store.readStream("schedule-m");
  const skipped = events.filter((e) => e.type === "schedule.skipped");
  assert.equal(skipped.length, 111);
  assert.equal(skipped[0].data.scheduled_for, "2026-03-02T08:31:00Z");
  assert.equal(skipped.at(-1)!.data.scheduled_for, "2026-03-02T10:21:00Z");
  assert.equal(s.get("m").next_run, "2026-03-02T10:22:00Z");
  await s.stop();
  s = make();
  await s.start();
  assert.equal((await store.readStream("schedule-m")).length, events.length);
  await s.stop();
  await store.close();
});
