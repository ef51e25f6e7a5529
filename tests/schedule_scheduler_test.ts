/**
 * The scheduler on an injected clock (no sleeping) over a real store (PGlite in memory, and
 * one test through a real Orchestrator on both backends).
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/clock.ts";
import { openEventStore, type SqlEventStore } from "../events/mod.ts";
import {
  InvalidScheduleError,
  type ScheduledJobInput,
  ScheduleExistsError,
  ScheduleNotFoundError,
  Scheduler,
} from "../schedules/mod.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";

const WORKFLOW = { metadata: { name: "scheduled" }, nodes: {}, connections: [] };
const ms = (iso: string) => Date.parse(iso);

interface Rig {
  store: SqlEventStore;
  clock: ManualClock;
  jobs: ScheduledJobInput[];
  scheduler: Scheduler;
  /** A second scheduler on the same store (a restart, or another process). */
  restart(atIso?: string): Promise<Scheduler>;
  /** Advances the clock by `stepMs` `times` times, letting fires finish after each step. */
  tick(times: number, stepMs: number, s?: Scheduler): Promise<void>;
}

async function rig(startIso: string): Promise<Rig> {
  const store = await openEventStore({ dataDir: "memory://" });
  const clock = new ManualClock(ms(startIso));
  const jobs: ScheduledJobInput[] = [];
  const seen = new Set<string>();
  const submitJob = (input: ScheduledJobInput) => {
    // Idempotent on job_id, like Orchestrator.jobs.submit.
    if (!seen.has(input.job_id)) jobs.push(input), seen.add(input.job_id);
    return Promise.resolve({ job_id: input.job_id });
  };
  const make = (c: ManualClock) => new Scheduler({ store, clock: c, submitJob });
  const scheduler = make(clock);
  await scheduler.start();
  return {
    store,
    clock,
    jobs,
    scheduler,
    async restart(atIso) {
      if (atIso) clock.advance(ms(atIso) - clock.now());
      const s = make(clock);
      await s.start();
      return s;
    },
    async tick(times, stepMs, s = scheduler) {
      for (let i = 0; i < times; i++) {
        clock.advance(stepMs);
        await s.idle();
      }
    },
  };
}

Deno.test("Scheduler: every second for 10 s makes 10 jobs with distinct scheduled_for", async () => {
  const r = await rig("2026-01-01T12:00:00Z");
  await r.scheduler.add({ workflow: WORKFLOW, cron_expression: "* * * * * *", schedule_id: "s1" });
  await r.tick(10, 1000);
  assert.equal(r.jobs.length, 10);
  assert.equal(new Set(r.jobs.map((j) => j.scheduled_for)).size, 10);
  assert.equal(r.jobs[0].scheduled_for, "2026-01-01T12:00:01Z");
  assert.equal(r.jobs[9].scheduled_for, "2026-01-01T12:00:10Z");
  assert.equal(r.scheduler.get("s1").last_run, "2026-01-01T12:00:10Z");
  const fired = (await r.store.readStream("schedule-s1")).filter((e) =>
    e.type === "schedule.fired"
  );
  assert.equal(fired.length, 10);
  await r.scheduler.stop();
  await r.store.close();
});

for (
  const [policy, window, expected] of [["skip", 3600, 0], ["run_once", 3600, 1], [
    "run_all",
    7200,
    112,
  ]] as const
) {
  Deno.test(`Scheduler: * * * * * down 08:29:30Z-10:21:30Z with ${policy} makes ${expected} catch-up jobs, then resumes at 10:22Z`, async () => {
    const r = await rig("2026-03-02T08:28:50Z");
    await r.scheduler.add({
      schedule_id: "m",
      workflow: WORKFLOW,
      frequency: "cron",
      cron_expression: "* * * * *",
      misfire_policy: policy,
      catch_up_window: window,
    });
    await r.tick(4, 10_000); // to 08:29:30, firing 08:29:00
    assert.deepEqual(r.jobs.map((j) => j.scheduled_for), ["2026-03-02T08:29:00Z"]);
    await r.scheduler.stop();
    const s2 = await r.restart("2026-03-02T10:21:30Z");
    const catchUps = r.jobs.slice(1);
    assert.equal(catchUps.length, expected);
    if (policy === "run_once") assert.equal(catchUps[0].scheduled_for, "2026-03-02T10:21:00Z");
    if (policy === "run_all") {
      assert.equal(catchUps[0].scheduled_for, "2026-03-02T08:30:00Z");
      assert.equal(catchUps.at(-1)!.scheduled_for, "2026-03-02T10:21:00Z");
    }
    assert.equal(s2.get("m").next_run, "2026-03-02T10:22:00Z");
    await r.tick(1, 30_000, s2);
    assert.equal(r.jobs.length, 1 + expected + 1);
    assert.equal(r.jobs.at(-1)!.scheduled_for, "2026-03-02T10:22:00Z");
    await s2.stop();
    await r.store.close();
  });
}

Deno.test("Scheduler: a restart in the middle of a minute and a second scheduler never make a second job", async () => {
  const r = await rig("2026-01-01T00:00:30Z");
  await r.scheduler.add({ schedule_id: "x", workflow: WORKFLOW, cron_expression: "* * * * *" });
  const other = await r.restart(); // a second process on the same log
  await r.tick(1, 30_000); // 00:01:00 fires in both
  await other.idle();
  assert.equal(r.jobs.length, 1);
  const fired = (await r.store.readStream("schedule-x")).filter((e) => e.type === "schedule.fired");
  assert.equal(fired.length, 1);
  await r.scheduler.stop();
  await other.stop();
  const again = await r.restart("2026-01-01T00:01:00.500Z");
  assert.equal(r.jobs.length, 1, "restarting within the tick's grace makes no second job");
  await again.update("x", { cron_expression: "* * * * *", workflow: WORKFLOW }); // unchanged
  assert.equal(
    (await r.store.readStream("schedule-x")).filter((e) => e.type === "schedule.updated").length,
    0,
  );
  await r.tick(1, 59_500, again);
  assert.deepEqual(r.jobs.map((j) => j.scheduled_for), [
    "2026-01-01T00:01:00Z",
    "2026-01-01T00:02:00Z",
  ]);
  await again.stop();
  await r.store.close();
});

Deno.test("Scheduler: a yearly timer beyond 24.8 days fires on time, never early", async () => {
  const r = await rig("2026-01-01T00:00:00Z");
  await r.scheduler.add({ schedule_id: "y", workflow: WORKFLOW, cron_expression: "0 0 1 7 *" });
  const due = ms("2026-07-01T00:00:00Z");
  await r.tick(1, due - r.clock.now() - 1);
  assert.equal(r.jobs.length, 0);
  await r.tick(1, 1);
  assert.deepEqual(r.jobs.map((j) => j.scheduled_for), ["2026-07-01T00:00:00Z"]);
  await r.scheduler.stop();
  await r.store.close();
});

Deno.test("Scheduler: pause stops fires; resume catches up once (run_once) and rearms", async () => {
  const r = await rig("2026-01-01T00:00:00Z");
  await r.scheduler.add({
    schedule_id: "p",
    workflow: WORKFLOW,
    cron_expression: "*/10 * * * * *",
  });
  await r.tick(1, 10_000);
  await r.scheduler.pause("p");
  assert.equal(r.scheduler.get("p").enabled, false);
  assert.equal(r.scheduler.get("p").next_run, null);
  await r.tick(6, 10_000);
  assert.equal(r.jobs.length, 1);
  await r.scheduler.resume("p");
  assert.equal(r.jobs.length, 2);
  assert.equal(r.jobs[1].scheduled_for, "2026-01-01T00:01:10Z");
  await r.tick(1, 10_000);
  assert.equal(r.jobs.at(-1)!.scheduled_for, "2026-01-01T00:01:20Z");
  await r.scheduler.remove("p");
  assert.throws(() => r.scheduler.get("p"), ScheduleNotFoundError);
  await r.tick(3, 10_000);
  assert.equal(r.jobs.length, 3);
  await r.scheduler.stop();
  await r.store.close();
});

Deno.test("Scheduler: daily fires at the wall-clock time of its zone and carries the job fields", async () => {
  const r = await rig("2026-03-27T08:00:00Z");
  await r.scheduler.add({
    schedule_id: "d",
    workflow: WORKFLOW,
    frequency: "daily",
    timezone: "Europe/Berlin",
    start_at: "2026-03-27T08:15:00Z",
    variables: { a: 1 },
    robot_id: "r-1",
    priority: "high",
  });
  await r.tick(3, 86_400_000 / 2); // to 2026-03-28T20:00Z
  assert.deepEqual(r.jobs.map((j) => j.scheduled_for), [
    "2026-03-27T08:15:00Z",
    "2026-03-28T08:15:00Z",
  ]);
  await r.tick(1, 86_400_000);
  assert.equal(r.jobs.at(-1)!.scheduled_for, "2026-03-29T07:15:00Z");
  assert.deepEqual(
    { v: r.jobs[0].variables, robot: r.jobs[0].robot_id, p: r.jobs[0].priority },
    { v: { a: 1 }, robot: "r-1", p: 2 },
  );
  await r.scheduler.stop();
  await r.store.close();
});

Deno.test("Scheduler: add refuses a never-firing expression and a taken id", async () => {
  const r = await rig("2026-01-01T00:00:00Z");
  assert.throws(
    () => r.scheduler.add({ workflow: WORKFLOW, cron_expression: "0 0 30 2 *" }),
    (e: unknown) => e instanceof InvalidScheduleError && e.field === "cron_expression",
  );
  await r.scheduler.add({ schedule_id: "dup", workflow: WORKFLOW, cron_expression: "0 * * * *" });
  await assert.rejects(
    () => r.scheduler.add({ schedule_id: "dup", workflow: WORKFLOW, cron_expression: "0 * * * *" }),
    ScheduleExistsError,
  );
  await r.scheduler.stop();
  await r.store.close();
});

Deno.test("Scheduler: a failed fire is reported and retried 1 s later, never stalling", async () => {
  const store = await openEventStore({ dataDir: "memory://" });
  const clock = new ManualClock(ms("2026-01-01T00:00:00Z"));
  const errors: unknown[] = [];
  const jobs: string[] = [];
  let failNext = true;
  const scheduler = new Scheduler({
    store,
    clock,
    onError: (e) => errors.push(e),
    submitJob: (input) => {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error("engine unavailable"));
      }
      jobs.push(input.scheduled_for);
      return Promise.resolve({ job_id: input.job_id });
    },
  });
  await scheduler.start();
  await scheduler.add({ schedule_id: "f", workflow: WORKFLOW, cron_expression: "* * * * *" });
  clock.advance(60_000);
  await scheduler.idle();
  assert.equal(errors.length, 1);
  assert.deepEqual(jobs, []);
  clock.advance(1000);
  await scheduler.idle();
  assert.deepEqual(jobs, ["2026-01-01T00:01:00Z"]);
  clock.advance(59_000);
  await scheduler.idle();
  assert.deepEqual(jobs, ["2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"]);
  await scheduler.stop();
  await store.close();
});

for (const backend of BACKENDS) {
  Deno.test(`Scheduler (${backend.name}): two schedulers on one log, every second for 10 s, make exactly 10 real jobs`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(ms("2026-01-01T00:00:00Z"));
    const t = await startOrchestrator(store, {}, clock);
    const submitJob = async (input: ScheduledJobInput) => {
      const job = await t.orchestrator.jobs.submit({
        workflow: input.workflow!,
        variables: input.variables,
        priority: input.priority,
        robot_id: input.robot_id,
        job_id: input.job_id,
      });
      return { job_id: job.job_id };
    };
    const a = new Scheduler({ store, clock, submitJob });
    const b = new Scheduler({ store, clock, submitJob });
    try {
      await a.start();
      await a.add({ schedule_id: "real", workflow: WORKFLOW, cron_expression: "* * * * * *" });
      await b.start();
      for (let i = 0; i < 10; i++) {
        clock.advance(1000);
        // The orchestrator's own scheduler follows the log too: a third one racing a and b.
        await Promise.all([a.idle(), b.idle(), t.orchestrator.scheduler.idle()]);
      }
      const fired = (await store.readStream("schedule-real")).filter((e) =>
        e.type === "schedule.fired"
      );
      assert.equal(fired.length, 10);
      assert.equal(new Set(fired.map((e) => e.data.scheduled_for)).size, 10);
      for (const e of fired) {
        assert.equal(t.orchestrator.jobs.view(e.data.job_id as string)?.status, "queued");
      }
      // Each fired tick's job stream holds one `job.submitted`, and no other job exists.
      // (Read per stream: `readAll` is gap-safe, so on a server shared with other work it
      // may hold back the latest commits for a moment.)
      for (const e of fired) {
        const events = await store.readStream(`job-${e.data.job_id}`);
        assert.equal(events.filter((x) => x.type === "job.submitted").length, 1);
      }
      assert.equal(t.orchestrator.jobs.list({ limit: 100 }).jobs.length, 10);
    } finally {
      await a.stop();
      await b.stop();
      await t.stop();
      await drop();
    }
  });
}
