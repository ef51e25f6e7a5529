/**
 * The orchestrator behind a transaction-mode pooler: a private PgBouncer (Debian package)
 * with `pool_mode = transaction` and 2 server connections in front of the test PostgreSQL,
 * `DATABASE_POOLER=transaction` on the store. End-to-end flow over REST and a real robot.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { verifyLog } from "../audit/mod.ts";
import { openEventStore, type RecordedEvent, subscribeAll } from "../events/mod.ts";
import { RobotClient } from "../robot/robot_client.ts";
import { startOrchestrator, TEST_DATABASE_URL } from "./_harness.ts";
import { findPgbouncer, startPgbouncer } from "./_pgbouncer.ts";
import { WORKFLOWS_DIR } from "./workflow_expectations.ts";

const binary = findPgbouncer();
if (!binary) {
  console.warn(
    "pooler_test: SKIPPED, no pgbouncer binary (apt-get install -y pgbouncer, or set " +
      "PGBOUNCER_BIN); .ci/run installs it",
  );
}

const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

Deno.test({
  name: "[pgbouncer transaction mode] a job submitted over REST runs on a robot; events in the log",
  ignore: !binary,
  async fn() {
    const pooler = await startPgbouncer(binary!);
    const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const open = () =>
      openEventStore({
        databaseUrl: pooler.url,
        dataDir: "unused",
        schema,
        maxConnections: 4,
        pooler: "transaction",
      });
    const store = await open();
    const other = await open(); // another node, also behind the pooler
    const t = await startOrchestrator(store);
    const robot = new RobotClient({
      url: t.wsUrl,
      token: t.robotToken,
      name: "robot-pooled",
      logger: quietLogger,
    });
    const seenByOther: RecordedEvent[] = [];
    const sub = subscribeAll(other, { onEvents: (events) => void seenByOther.push(...events) });
    try {
      // No LISTEN behind a transaction pooler: subscribers poll.
      assert.equal(store.listenAppends, undefined);
      await robot.start();
      const workflow = JSON.parse(
        await Deno.readTextFile(new URL("stress_task_6.json", WORKFLOWS_DIR)),
      );
      const submitted = await t.api("POST", "/api/v1/jobs", { workflow });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const jobId: string = submitted.body.job_id;
      const done = await t.waitForJob(jobId, ["completed", "failed", "timeout", "cancelled"]);
      assert.equal(done.status, "completed", done.error);
      assert.equal(done.robot_id, "robot-pooled");

      const history = (await t.api("GET", `/api/v1/jobs/${jobId}/events`)).body;
      const types: string[] = history.events.map((e: { type: string }) => e.type);
      assert.deepEqual(
        types.filter((x) =>
          ["job.queued", "job.dispatched", "job.started", "job.completed"].includes(x)
        ),
        ["job.queued", "job.dispatched", "job.started", "job.completed"],
      );
      assert.deepEqual(
        (await store.readStream("robot-robot-pooled")).map((e) => e.type),
        ["robot.registered", "robot.connected", "robot.job_assigned", "robot.job_released"],
      );

      // The other node learns of the result by polling (bounded by its poll interval).
      const completed = (await other.readStream(`job-${jobId}`)).find((e) =>
        e.type === "job.completed"
      );
      assert.ok(completed, "job.completed is in the log");
      await sub.waitFor(completed.globalPosition, { signal: AbortSignal.timeout(20_000) });
      assert.ok(seenByOther.some((e) => e.eventId === completed.eventId));

      // Seals and the audit chain work through the pooler too.
      await other.seal();
      const verified = await verifyLog(other);
      assert.equal(verified.ok, true, JSON.stringify(verified.firstProblem));
    } catch (error) {
      console.error("pgbouncer output:\n" + pooler.log());
      throw error;
    } finally {
      await robot.close();
      await sub.close();
      await t.stop();
      await other.close();
      await pooler.stop();
      const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop schema if exists ${schema} cascade`);
      } finally {
        await sql.end();
      }
    }
  },
});

Deno.test("only transaction-scoped advisory locks are taken (a pooler reuses sessions)", async () => {
  const sessionLock = /pg_(try_)?advisory_lock(_shared)?\s*\(/;
  const offenders: string[] = [];
  const root = new URL("../", import.meta.url);
  const walk = async (dir: URL): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory && !["tests", "node_modules", "data", ".git"].includes(entry.name)) {
        await walk(new URL(`${entry.name}/`, dir));
      } else if (entry.isFile && entry.name.endsWith(".ts")) {
        const file = new URL(entry.name, dir);
        if (sessionLock.test(await Deno.readTextFile(file))) offenders.push(file.pathname);
      }
    }
  };
  await walk(root);
  assert.deepEqual(offenders, []);
});
