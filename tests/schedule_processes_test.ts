// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * Schedules in real `main.ts` processes: two orchestrators on one PostgreSQL schema, on the
 * real clock (a schedule created on one node is followed by the other without a restart,
 * both fire `* * * * * *`, and ten seconds make exactly ten jobs, one per tick; the test
 * awaits the fires through the events API's long poll, it never sleeps), and a server
 * started under `TZ=Australia/Sydney` answering in UTC.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "./_harness.ts";
import { type MainProcess, startMain } from "./_processes.ts";

const TOKEN = "processes-api-token";
const WORKFLOW = { metadata: { name: "every-second" }, nodes: {}, connections: [] };

/**
 * Long-polls the node's events API on `stream` until `done(events so far)` holds.
 * @returns every event of the stream seen.
 */
async function follow(
  n: MainProcess,
  stream: string,
  done: (events: any[]) => boolean,
): Promise<any[]> {
  const seen: any[] = [];
  let after = 0;
  for (let i = 0; i < 200 && !done(seen); i++) {
    const page = (await n.api("GET", `/api/v1/events?stream=${stream}&after=${after}&wait=5`))
      .body;
    seen.push(...page.events);
    after = page.next_after;
  }
  assert.ok(done(seen), `${stream} never reached the expected events`);
  return seen;
}

/** The first ten consecutive seconds with a fire, when the fires hold them. */
function firstTenSeconds(events: any[]): string[] | null {
  const ticks = [
    ...new Set(
      events.filter((e) => e.type === "schedule.fired")
        .map((e) => e.data.scheduled_for as string),
    ),
  ].sort();
  if (ticks.length < 10) return null;
  return ticks.slice(0, 10);
}

Deno.test("two orchestrator processes on one PostgreSQL schema: * * * * * * for 10 s makes exactly 10 jobs", async () => {
  const schema = `n_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  const env = (dir: string) => ({
    DATA_DIR: dir,
    DATABASE_URL: TEST_DATABASE_URL,
    DATABASE_SCHEMA: schema,
    ORCHESTRATOR_API_TOKEN: TOKEN,
    ORCHESTRATOR_ROBOT_TOKEN: "two-nodes-robot-token",
    SEAL_INTERVAL: "0",
  });
  const nodes: MainProcess[] = [];
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    nodes.push(await startMain(env(dirs[0]), TOKEN)); // creates the schema
    nodes.push(await startMain(env(dirs[1]), TOKEN));
    const [a, b] = nodes;
    const created = await a.api("POST", "/api/v1/schedules", {
      schedule_id: "tick",
      workflow: WORKFLOW,
      cron_expression: "* * * * * *",
      // A node slowed down past the misfire grace still makes every tick.
      misfire_policy: "run_all",
      catch_up_window: 60,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    // Node B follows the log: it knows the schedule without a restart.
    const onB = await follow(b, "schedule-tick", (events) => firstTenSeconds(events) !== null);
    const window = firstTenSeconds(onB)!;
    const seen = await b.api("GET", "/api/v1/schedules/tick");
    assert.equal(seen.status, 200, JSON.stringify(seen.body));
    assert.equal(seen.body.cron_expression, "* * * * * *");
    // ... and changes it: pausing on B stops both nodes.
    assert.equal((await b.api("POST", "/api/v1/schedules/tick/pause")).status, 200);
    await follow(a, "schedule-tick", (events) => events.some((e) => e.type === "schedule.paused"));

    // Ten consecutive seconds.
    const first = Temporal.Instant.from(window[0]);
    assert.deepEqual(
      window,
      Array.from({ length: 10 }, (_, i) => first.add({ seconds: i }).toString()),
    );

    const events = sql.unsafe(
      `select stream_id, type, data from ${schema}.events order by global_position`,
    );
    const rows = (await events) as unknown as { stream_id: string; type: string; data: any }[];
    const fired = rows.filter((r) =>
      r.stream_id === "schedule-tick" && r.type === "schedule.fired"
    );
    const submitted = rows.filter((r) => r.type === "job.submitted");
    // One fire per tick, one job per fire, no job without a fire.
    const ticks = fired.map((r) => r.data.scheduled_for);
    assert.equal(new Set(ticks).size, ticks.length, `a tick fired twice: ${ticks}`);
    const jobStreams = submitted.map((r) => r.stream_id);
    assert.equal(new Set(jobStreams).size, jobStreams.length, "a job was submitted twice");
    assert.deepEqual(
      new Set(jobStreams),
      new Set(fired.map((r) => `job-${r.data.job_id}`)),
      "every job belongs to exactly one fire",
    );
    const inWindow = fired.filter((r) => window.includes(r.data.scheduled_for));
    assert.equal(inWindow.length, 10);
    const jobsInWindow = new Set(inWindow.map((r) => `job-${r.data.job_id}`));
    assert.equal(submitted.filter((r) => jobsInWindow.has(r.stream_id)).length, 10);
  } finally {
    for (const n of nodes) await n.kill();
    await sql.unsafe(`drop schema if exists ${schema} cascade`);
    await sql.end();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a server started under TZ=Australia/Sydney: 0 0 * * * * in UTC after 2025-10-04T15:30:00Z is 16:00Z, 17:00Z, 18:00Z", async () => {
  const dir = await Deno.makeTempDir();
  const node = await startMain({
    DATA_DIR: dir,
    TZ: "Australia/Sydney",
    ORCHESTRATOR_API_TOKEN: TOKEN,
    ORCHESTRATOR_ROBOT_TOKEN: "processes-robot-token",
    SEAL_INTERVAL: "0",
  }, TOKEN);
  try {
    const created = await node.api("POST", "/api/v1/schedules", {
      schedule_id: "hourly-utc",
      workflow: WORKFLOW,
      cron_expression: "0 0 * * * *",
      timezone: "UTC",
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const path = "/api/v1/schedules/hourly-utc/next-runs?after=2025-10-04T15:30:00Z&count=3";
    assert.deepEqual((await node.api("GET", path)).body.next_runs, [
      "2025-10-04T16:00:00Z",
      "2025-10-04T17:00:00Z",
      "2025-10-04T18:00:00Z",
    ]);
    // The same through the offset form of `after`, as Sydney's clock reads it (AEST).
    const local =
      "/api/v1/schedules/hourly-utc/next-runs?after=2025-10-05T01:30:00%2B10:00&count=1";
    assert.deepEqual((await node.api("GET", local)).body.next_runs, ["2025-10-04T16:00:00Z"]);
  } finally {
    await node.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
