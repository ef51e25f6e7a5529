/**
 * Every case of issue 4 through the real scheduler on an injected clock (the job of each
 * expected tick is submitted at that instant, none earlier, none in between) and through the
 * REST endpoint `next-runs`; the far timer on a clock that wraps long delays as the runtime
 * does; and the `TZ=Australia/Sydney` case in a process started under that zone.
 */
import assert from "node:assert/strict";
import { type Clock, ManualClock } from "../engine/clock.ts";
import { openEventStore, type SqlEventStore } from "../events/mod.ts";
import { type ScheduledJobInput, Scheduler } from "../schedules/mod.ts";
import { scheduleRoutes } from "../http/schedule_routes.ts";
import { withPrincipal } from "../http/auth.ts";

const ADMIN = { org_id: "default", role: "admin" as const, token_id: null };

const WORKFLOW = { metadata: { name: "scheduled" }, nodes: {}, connections: [] };

interface Case {
  name: string;
  cron: string;
  timezone: string;
  after: string;
  expect: string[];
}

const CASES: Case[] = [
  {
    name: "30 2 * * * in New York: once, at the end of the spring-forward gap",
    cron: "30 2 * * *",
    timezone: "America/New_York",
    after: "2026-03-08T06:30:00Z",
    expect: ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"],
  },
  {
    name: "0 10 * * * in Chicago across spring forward",
    cron: "0 10 * * *",
    timezone: "America/Chicago",
    after: "2025-03-08T15:00:00Z",
    expect: ["2025-03-08T16:00:00Z", "2025-03-09T15:00:00Z", "2025-03-10T15:00:00Z"],
  },
  {
    name: "0 7-8 * * * in Los Angeles across spring forward",
    cron: "0 7-8 * * *",
    timezone: "America/Los_Angeles",
    after: "2020-03-07T16:00:00Z",
    expect: [
      "2020-03-08T14:00:00Z",
      "2020-03-08T15:00:00Z",
      "2020-03-09T14:00:00Z",
      "2020-03-09T15:00:00Z",
    ],
  },
  {
    name: "30 1 * * * in New York: once, at the first 01:30 of fall back",
    cron: "30 1 * * *",
    timezone: "America/New_York",
    after: "2026-10-31T16:00:00Z",
    expect: ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
  },
  {
    name: "*/15 * * * * in New York from 05:00Z to 07:00Z inclusive: 9 fires, 15 min apart",
    cron: "*/15 * * * *",
    timezone: "America/New_York",
    after: "2026-11-01T04:59:59Z",
    expect: Array.from(
      { length: 9 },
      (_, i) => Temporal.Instant.from("2026-11-01T05:00:00Z").add({ minutes: 15 * i }).toString(),
    ),
  },
  {
    name: "0 0 13 * 5: the 13th or a Friday (Vixie cron)",
    cron: "0 0 13 * 5",
    timezone: "UTC",
    after: "2023-01-01T00:00:00Z",
    expect: ["01-06", "01-13", "01-20", "01-27", "02-03", "02-10", "02-13", "02-17"]
      .map((d) => `2023-${d}T00:00:00Z`),
  },
  {
    name: "0 0 0 29 2 * (6 fields): leap days only",
    cron: "0 0 0 29 2 *",
    timezone: "UTC",
    after: "2024-12-13T00:00:00Z",
    expect: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
  },
  {
    name: "*/7 * * * *: the step restarts each hour",
    cron: "*/7 * * * *",
    timezone: "UTC",
    after: "2026-01-01T00:50:00Z",
    expect: ["2026-01-01T00:56:00Z", "2026-01-01T01:00:00Z", "2026-01-01T01:07:00Z"],
  },
  {
    name: "0 9 * * 1: Mondays",
    cron: "0 9 * * 1",
    timezone: "UTC",
    after: "2026-11-28T00:00:00Z", // a Saturday
    expect: ["2026-11-30T09:00:00Z", "2026-12-07T09:00:00Z", "2026-12-14T09:00:00Z"],
  },
  {
    name: "0 0 * * * * in UTC across Sydney's spring forward",
    cron: "0 0 * * * *",
    timezone: "UTC",
    after: "2025-10-04T15:30:00Z",
    expect: ["2025-10-04T16:00:00Z", "2025-10-04T17:00:00Z", "2025-10-04T18:00:00Z"],
  },
];

/** One in-memory store for every case (each on its own schedule id), closed by the last test. */
let shared: Promise<SqlEventStore> | undefined;
const sharedStore = () => (shared ??= openEventStore({ dataDir: "memory://" }));
let caseNumber = 0;

/**
 * Runs `c` on a fresh scheduler whose clock starts at `after`: for each expected tick, the
 * clock stops 1 ms before it (no new job) and then at it (its job).
 */
async function runCase(c: Case, clock: Clock & { advance(ms: number): void }) {
  const store = await sharedStore();
  const id = `c${++caseNumber}`;
  const jobs: ScheduledJobInput[] = [];
  const scheduler = new Scheduler({
    store,
    clock,
    submitJob: (input) => (jobs.push(input), Promise.resolve({ job_id: input.job_id })),
  });
  await scheduler.start();
  try {
    const routes = withPrincipal(scheduleRoutes(scheduler), ADMIN);
    const res = await routes.request("/api/v1/schedules", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        schedule_id: id,
        workflow: WORKFLOW,
        cron_expression: c.cron,
        timezone: c.timezone,
      }),
    });
    const created = await res.json();
    assert.equal(res.status, 201, JSON.stringify(created));
    assert.equal(created.next_run, c.expect[0]);
    const runs = await routes.request(
      `/api/v1/schedules/${id}/next-runs?after=${c.after}&count=${c.expect.length}`,
    );
    assert.deepEqual((await runs.json()).next_runs, c.expect, "REST next-runs");
    for (const [i, tick] of c.expect.entries()) {
      clock.advance(Date.parse(tick) - clock.now() - 1);
      await scheduler.idle();
      assert.equal(jobs.length, i, `no job before ${tick}`);
      clock.advance(1);
      await scheduler.idle();
      assert.equal(jobs.length, i + 1, `a job at ${tick}`);
      assert.equal(jobs[i].scheduled_for, tick);
    }
    return { jobs, view: scheduler.get(id) };
  } finally {
    await scheduler.remove(id).catch(() => {}); // the next case's scheduler folds it too
    await scheduler.stop();
  }
}

for (const c of CASES) {
  Deno.test(`Scheduler and REST: ${c.name}`, async () => {
    const { jobs, view } = await runCase(c, new ManualClock(Date.parse(c.after)));
    assert.equal(new Set(jobs.map((j) => j.job_id)).size, c.expect.length);
    assert.equal(view.last_run, c.expect.at(-1));
    if (c.cron === "0 9 * * 1") {
      for (const j of jobs) {
        assert.equal(Temporal.Instant.from(j.scheduled_for).toZonedDateTimeISO("UTC").dayOfWeek, 1);
      }
    }
  });
}

/**
 * A manual clock whose timers behave like the runtime's: a delay above 2^31 - 1 ms wraps
 * and fires after 1 ms (as browsers, Node and Deno do). Records every requested delay.
 */
class RuntimeLikeClock extends ManualClock {
  delays: number[] = [];
  override setTimeout(fn: () => void, delayMs: number): unknown {
    this.delays.push(delayMs);
    return super.setTimeout(fn, delayMs > 2 ** 31 - 1 ? 1 : delayMs);
  }
}

Deno.test("Scheduler: a timer years ahead is armed in chunks under the setTimeout limit and fires on time, never early", async () => {
  const clock = new RuntimeLikeClock(Date.parse("2024-12-13T00:00:00Z"));
  const c = CASES.find((x) => x.cron === "0 0 0 29 2 *")!;
  const { jobs } = await runCase(c, clock);
  assert.deepEqual(jobs.map((j) => j.scheduled_for), c.expect);
  assert.ok(clock.delays.length > 0);
  assert.ok(
    clock.delays.every((d) => d >= 0 && d <= 2 ** 31 - 1),
    `a delay beyond the limit: ${Math.max(...clock.delays)}`,
  );
});

Deno.test("Scheduler under TZ=Australia/Sydney (a separate process): 0 0 * * * * in UTC fires at 16:00Z, 17:00Z, 18:00Z", async () => {
  const url = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const code = `
    import { ManualClock } from ${url("../engine/clock.ts")};
    import { openEventStore } from ${url("../events/mod.ts")};
    import { Scheduler } from ${url("../schedules/mod.ts")};
    const clock = new ManualClock(Date.parse("2025-10-04T15:30:00Z"));
    const store = await openEventStore({ dataDir: "memory://" });
    const fired = [];
    const s = new Scheduler({ store, clock, submitJob: (j) => (fired.push(j.scheduled_for),
      Promise.resolve({ job_id: j.job_id })) });
    await s.start();
    await s.add({ schedule_id: "h", workflow: { nodes: {} }, cron_expression: "0 0 * * * *",
      timezone: "UTC" });
    const nextRuns = s.nextRuns("h", Temporal.Instant.from("2025-10-04T15:30:00Z"), 3).map(String);
    for (let i = 0; i < 3 * 60; i++) { clock.advance(60_000); await s.idle(); }
    await s.stop();
    await store.close();
    console.log(JSON.stringify({ offset: new Date(0).getTimezoneOffset(),
      local: new Date(Date.parse("2025-10-04T16:00:00Z")).getHours(), nextRuns, fired }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", new URL("../deno.json", import.meta.url).pathname, code],
    env: { TZ: "Australia/Sydney" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  assert.equal(result.offset, -600, "the child really runs in Sydney time");
  assert.equal(result.local, 3, "16:00Z is 03:00 in Sydney, just after its spring forward");
  const expected = ["2025-10-04T16:00:00Z", "2025-10-04T17:00:00Z", "2025-10-04T18:00:00Z"];
  assert.deepEqual(result.nextRuns, expected);
  assert.deepEqual(result.fired, expected);
});

Deno.test("(closes the store the cases shared)", async () => {
  await (await sharedStore()).close();
});
