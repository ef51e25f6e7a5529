/**
 * Retention on PostgreSQL: `deno task archive` moves finished job streams to the archive
 * schema, `deno task verify` still passes (live log and archive), tampering on either side
 * of the boundary is still detected, and an orchestrator restarts on the archived log.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  ARCHIVE_EVENT_TYPE,
  createPostgresClient,
  createSqlEventStore,
  migrateEventsSchema,
  openEventStore,
  type SqlEventStore,
} from "../events/mod.ts";
import { RobotClient } from "../robot/robot_client.ts";
import { startOrchestrator, TEST_DATABASE_URL } from "./_harness.ts";
import { WORKFLOWS_DIR } from "./workflow_expectations.ts";

const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Runs a command-line entry point as a real process on the test schema. */
async function run(entry: string, schema: string, args: string[] = []) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`../${entry}`, import.meta.url).pathname, ...args],
    env: { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  return { code: output.code, text };
}

/** A fresh schema with its own store; `sql` runs raw statements in it. */
function freshLog() {
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const sql = postgres(TEST_DATABASE_URL, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema },
  });
  return {
    schema,
    sql,
    async drop() {
      await sql.unsafe(`drop schema if exists ${schema} cascade`);
      await sql.unsafe(`drop schema if exists ${schema}_archive cascade`);
      await sql.end();
    },
  };
}

/**
 * Resolves once no transaction older than this schema's events is open anywhere on the
 * server (other tests share it): a seal taken after that covers every event. Checks again
 * every 20 ms; 20 s at most.
 */
async function settled(sql: postgres.Sql): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const [{ held }] = await sql.unsafe<{ held: boolean }[]>(
      `select exists (select 1 from events
         where transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) as held`,
    );
    if (!held) return;
    if (Date.now() > deadline) throw new Error("events stayed held back for 20 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function appendJob(store: SqlEventStore, id: string, types: string[]): Promise<void> {
  await store.append([{
    streamId: `job-${id}`,
    expectedVersion: 0,
    events: types.map((type, i) => ({ type, data: { job_id: id, step: i } })),
  }]);
}

Deno.test("archive moves finished, sealed job streams and verify passes across the boundary; tampering is detected on both sides", async () => {
  const log = freshLog();
  const client = await createPostgresClient({ url: TEST_DATABASE_URL, schema: log.schema, max: 2 });
  const store = createSqlEventStore(client);
  try {
    await migrateEventsSchema(client);
    await appendJob(store, "old-done", ["job.submitted", "job.queued", "job.completed"]);
    await appendJob(store, "old-failed", ["job.submitted", "job.queued", "job.failed"]);
    await appendJob(store, "old-running", ["job.submitted", "job.queued", "job.dispatched"]);
    await store.append([{
      streamId: "robot-r1",
      expectedVersion: 0,
      events: [{ type: "robot.registered", data: { robot_id: "r1" } }],
    }]);
    // Not currentPosition(): that is gap-safe, and other tests' open transactions on this
    // server may hold it back.
    const [{ cut }] = await log.sql.unsafe<{ cut: number }[]>(
      "select max(global_position)::int as cut from events",
    );
    await appendJob(store, "new-done", ["job.submitted", "job.queued", "job.completed"]);

    await settled(log.sql);
    const archived = await run("cli/archive.ts", log.schema, ["--before", String(cut)]);
    assert.equal(archived.code, 0, archived.text);
    assert.match(archived.text, /moved 6 events of 2 finished jobs/);

    const live = await log.sql.unsafe<{ stream_id: string }[]>(
      "select distinct stream_id from events order by 1",
    );
    assert.deepEqual(live.map((r) => r.stream_id), [
      "audit-seals",
      "job-new-done",
      "job-old-running",
      "robot-r1",
    ]);
    const moved = await log.sql.unsafe<{ stream_id: string; n: number }[]>(
      `select stream_id, count(*)::int as n from ${log.schema}_archive.events
       group by 1 order by 1`,
    );
    assert.deepEqual(moved.map((r) => [r.stream_id, r.n]), [["job-old-done", 3], [
      "job-old-failed",
      3,
    ]]);
    const [record] = (await store.readStream("audit-seals")).filter((e) =>
      e.type === ARCHIVE_EVENT_TYPE
    );
    assert.equal(record.data.streams, 2);
    assert.equal(record.data.events, 6);
    assert.deepEqual((record.data.heads as unknown[][]).map((h) => [h[0], h[1]]), [
      ["job-old-done", 3],
      ["job-old-failed", 3],
    ]);

    // Archiving again moves nothing; appending more and sealing keeps the log verifiable.
    const again = await run("cli/archive.ts", log.schema, ["--before", String(cut)]);
    assert.match(again.text, /moved 0 events of 0 finished jobs/);
    await store.append([{
      streamId: "job-old-running",
      expectedVersion: 3,
      events: [{ type: "job.completed", data: {} }],
    }]);
    await store.seal();

    const clean = await run("audit/verify_main.ts", log.schema);
    assert.equal(clean.code, 0, clean.text);
    assert.match(clean.text, /archive .*_archive\.events: 6 events in 2 streams/);
    assert.match(clean.text, /OK: the archive ends at the heads the live log recorded/);

    // Tamper after the boundary (live log): detected.
    await log.sql.unsafe(
      `update events set data = '{"step": 9}' where stream_id = 'job-new-done'
       and stream_version = 2`,
    );
    const liveTampered = await run("audit/verify_main.ts", log.schema);
    assert.equal(liveTampered.code, 1, liveTampered.text);
    assert.match(liveTampered.text, /FAILED: stream job-new-done version 2: altered/);
    await log.sql.unsafe(
      `update events set data = '{"step": 1, "job_id": "new-done"}'
       where stream_id = 'job-new-done' and stream_version = 2`,
    );
    assert.equal((await run("audit/verify_main.ts", log.schema)).code, 0);

    // Tamper in the archive: an edit (then undone), then a deleted tail.
    const archive = `${log.schema}_archive.events`;
    const where = "where stream_id = 'job-old-done' and stream_version = 1";
    const [original] = await log.sql.unsafe<{ data: string }[]>(
      `select data::text as data from ${archive} ${where}`,
    );
    await log.sql.unsafe(`update ${archive} set data = '{}' ${where}`);
    const edited = await run("audit/verify_main.ts", log.schema);
    assert.equal(edited.code, 1, edited.text);
    assert.match(edited.text, /FAILED: archive stream job-old-done version 1: altered/);
    await log.sql.unsafe(`update ${archive} set data = $1::text::jsonb ${where}`, [original.data]);
    await log.sql.unsafe(
      `delete from ${archive} where stream_id = 'job-old-failed' and stream_version = 3`,
    );
    const truncated = await run("audit/verify_main.ts", log.schema);
    assert.equal(truncated.code, 1, truncated.text);
    assert.match(truncated.text, /FAILED: archive stream job-old-failed version 3: tail_removed/);

    // Rewriting the boundary record in the live log breaks its chain.
    await log.sql.unsafe(
      `update events set data = jsonb_set(data, '{streams}', '1')
       where type = '${ARCHIVE_EVENT_TYPE}'`,
    );
    const forged = await run("audit/verify_main.ts", log.schema);
    assert.equal(forged.code, 1);
    assert.match(forged.text, /FAILED: stream audit-seals version \d+: altered/);
  } finally {
    await store.close();
    await log.drop();
  }
});

Deno.test("archive refuses the embedded store and a bad --before", async () => {
  const pglite = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../cli/archive.ts", import.meta.url).pathname, "--before", "5"],
    env: { DATABASE_URL: "", DATA_DIR: "memory://" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(pglite.code, 2);
  assert.match(new TextDecoder().decode(pglite.stderr), /needs PostgreSQL/);
  const bad = await run("cli/archive.ts", "public", ["--before", "yesterday"]);
  assert.equal(bad.code, 2);
  assert.match(bad.text, /--before must be a global position or an RFC 3339 instant/);
});

Deno.test("an orchestrator restarts on an archived log: finished jobs are gone, the rest is intact", async () => {
  const log = freshLog();
  const open = () =>
    openEventStore({
      databaseUrl: TEST_DATABASE_URL,
      dataDir: "unused",
      schema: log.schema,
      maxConnections: 4,
    });
  let t = await startOrchestrator(await open());
  const robot = new RobotClient({
    url: t.wsUrl,
    token: t.robotToken,
    name: "robot-archive",
    logger: quietLogger,
  });
  try {
    await robot.start();
    const workflow = JSON.parse(
      await Deno.readTextFile(new URL("stress_task_1.json", WORKFLOWS_DIR)),
    );
    const done: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = (await t.api("POST", "/api/v1/jobs", { workflow })).body.job_id;
      assert.equal((await t.waitForJob(id, ["completed", "failed"])).status, "completed");
      done.push(id);
    }
    await robot.close();
    await t.waitUntil(() => t.orchestrator.core.robots.get("robot-archive") !== undefined);
    const queued = (await t.api("POST", "/api/v1/jobs", { workflow })).body.job_id;
    await t.waitForJob(queued, ["queued"]);
    const cut = new Date().toISOString(); // an instant this time
    await t.stop();

    await settled(log.sql);
    const archived = await run("cli/archive.ts", log.schema, ["--before", cut, "--batch", "1"]);
    assert.equal(archived.code, 0, archived.text);
    assert.match(archived.text, /of 2 finished jobs .* in 2 batches/);
    const verified = await run("audit/verify_main.ts", log.schema);
    assert.equal(verified.code, 0, verified.text);

    t = await startOrchestrator(await open());
    assert.equal(t.orchestrator.ready, true);
    for (const id of done) assert.equal((await t.api("GET", `/api/v1/jobs/${id}`)).status, 404);
    const still = await t.api("GET", `/api/v1/jobs/${queued}`);
    assert.equal(still.status, 200);
    assert.equal(still.body.status, "queued");
    const robotView = await t.api("GET", "/api/v1/robots/robot-archive");
    assert.equal(robotView.status, 200);
    assert.deepEqual(robotView.body.current_jobs, []);
  } finally {
    await robot.close();
    await t.stop();
    await log.drop();
  }
});
