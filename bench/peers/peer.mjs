/**
 * One peer run of `bench/peers.ts`, on Node.js as the peer's users run it:
 *
 *   node bench/peers/peer.mjs --peer graphile-worker|pg-boss --jobs J --workers W --slots S
 *     --submitters C --database-url URL [--rate R]
 *
 * The producer (this process) creates a fresh schema for the peer, starts the workers in a
 * child Node process (W workers × S jobs at once: one graphile-worker pool of concurrency
 * W×S, or W pg-boss `work()` pollers of batch size S), enqueues J no-op jobs with C `addJob`
 * / `send` calls in flight, and polls the peer's table every 10 ms until all J are complete.
 * Each job carries its enqueue time (wall clock, ms); the handler records start − enqueue.
 * With `--rate R` (jobs/s) the jobs are enqueued open loop instead, job i at start + i × 1000 / R
 * ms whatever the earlier calls' answers, each carrying its intended time (as `--rate` of
 * `bench/fleet.ts` does for the orchestrator). Prints one JSON line: jobs/s end to end, enqueue-to-start p50/p95/p99 (ms), completions
 * over time, the worker process's CPU seconds and peak RSS. Drops the schema at the end.
 *
 * @module
 */
import { fork } from "node:child_process";
import process from "node:process";
import { parseArgs } from "node:util";
import pg from "pg";

const { values } = parseArgs({
  options: {
    peer: { type: "string", default: "graphile-worker" },
    role: { type: "string", default: "producer" },
    jobs: { type: "string", default: "2000" },
    workers: { type: "string", default: "20" },
    slots: { type: "string", default: "4" },
    submitters: { type: "string", default: "50" },
    rate: { type: "string", default: "0" },
    schema: { type: "string", default: "" },
    "database-url": {
      type: "string",
      default: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    },
  },
});
const PEER = values.peer;
const J = Number(values.jobs);
const WORKERS = Number(values.workers);
const SLOTS = Number(values.slots);
const SUBMITTERS = Number(values.submitters);
const RATE = Number(values.rate);
const URL_ = values["database-url"];
const QUEUE = "bench";

/** Wall-clock time in ms with sub-ms precision (comparable across processes). */
const now = () => performance.timeOrigin + performance.now();

/** Value at percentile p (0–100) of an ascending array. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Starts the peer's workers; returns a stop function. `onStart(sentAt)` runs per job. */
async function startWorkers(schema, onStart) {
  if (PEER === "graphile-worker") {
    const { run } = await import("graphile-worker");
    const runner = await run({
      connectionString: URL_,
      schema,
      concurrency: WORKERS * SLOTS,
      noHandleSignals: true,
      logger: quietGraphileLogger(await import("graphile-worker")),
      taskList: {
        [QUEUE]: (payload) => {
          onStart(payload.sent_at);
        },
      },
    });
    return () => runner.stop();
  }
  const { default: PgBoss } = await import("pg-boss");
  const boss = new PgBoss({ connectionString: URL_, schema, supervise: false, schedule: false });
  boss.on("error", (e) => console.error("pg-boss:", e.message));
  await boss.start();
  for (let i = 0; i < WORKERS; i++) {
    // 0.5 s is pg-boss's shortest allowed polling interval (its default is 2 s).
    await boss.work(QUEUE, { batchSize: SLOTS, pollingIntervalSeconds: 0.5 }, (jobs) => {
      for (const job of jobs) onStart(job.data.sent_at);
    });
  }
  return () => boss.stop({ graceful: false, wait: true, close: true });
}

function quietGraphileLogger({ Logger }) {
  return new Logger(() => (level, message) => {
    if (level === "error") console.error("graphile-worker:", message);
  });
}

/** Creates the schema and the peer's tables before the clock starts; returns an enqueue fn. */
async function prepareProducer(schema) {
  if (PEER === "graphile-worker") {
    const { makeWorkerUtils } = await import("graphile-worker");
    const utils = await makeWorkerUtils({ connectionString: URL_, schema });
    await utils.migrate();
    return {
      add: (sentAt) => utils.addJob(QUEUE, { sent_at: sentAt }),
      countSql: `select count(*)::int as n from ${schema}._private_jobs`,
      // Graphile Worker deletes a job once it completes.
      completedOf: (remaining, added) => Math.max(0, added - remaining),
      release: () => utils.release(),
    };
  }
  const { default: PgBoss } = await import("pg-boss");
  const boss = new PgBoss({ connectionString: URL_, schema, supervise: false, schedule: false });
  boss.on("error", (e) => console.error("pg-boss:", e.message));
  await boss.start();
  await boss.createQueue(QUEUE);
  return {
    add: (sentAt) => boss.send(QUEUE, { sent_at: sentAt }),
    countSql: `select count(*)::int as n from ${schema}.job
      where name = '${QUEUE}' and state = 'completed'`,
    completedOf: (n) => n,
    release: () => boss.stop({ graceful: false, wait: true, close: true }),
  };
}

async function worker() {
  const latencies = [];
  const stop = await startWorkers(values.schema, (sentAt) => latencies.push(now() - sentAt));
  process.send({ type: "ready" });
  process.on("message", async (m) => {
    if (m.type !== "report") return;
    await stop();
    const usage = process.resourceUsage();
    process.send({
      type: "report",
      latencies,
      cpu_seconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
      peak_rss_mib: Math.round(usage.maxRSS / 1024),
    });
    process.disconnect();
  });
}

async function producer() {
  const schema = `bench_${PEER.replace("-", "_")}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: URL_ });
  await admin.connect();
  const prepared = await prepareProducer(schema);
  const child = fork(new URL(import.meta.url).pathname, [
    ...process.argv.slice(2),
    "--role",
    "worker",
    "--schema",
    schema,
  ]);
  const messages = [];
  const waiters = [];
  child.on("message", (m) => {
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else messages.push(m);
  });
  const next = (type) => {
    const i = messages.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(messages.splice(i, 1)[0]);
    return new Promise((resolve) => waiters.push({ type, resolve }));
  };
  await next("ready");

  const start = now();
  let sent = 0;
  let added = 0;
  const openLoop = async () => {
    const calls = [];
    const interval = 1000 / RATE;
    while (sent < J) {
      while (sent < J && start + sent * interval <= now()) {
        calls.push(prepared.add(start + sent++ * interval).then(() => added++));
      }
      const wait = start + sent * interval - now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait - 0.5)));
    }
    await Promise.all(calls);
  };
  const submitting = RATE > 0 ? openLoop() : Promise.all(
    Array.from({ length: SUBMITTERS }, async () => {
      while (sent < J) {
        sent++;
        await prepared.add(now());
        added++;
      }
    }),
  );
  const series = [];
  for (;;) {
    const addedBefore = added;
    const { rows } = await admin.query(prepared.countSql);
    const completed = prepared.completedOf(rows[0].n, addedBefore);
    series.push([Math.round(now() - start), completed]);
    if (completed >= J) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await submitting;
  const seconds = (now() - start) / 1000;
  child.send({ type: "report" });
  const report = await next("report");
  await prepared.release();
  await admin.query(`drop schema if exists ${schema} cascade`);
  await admin.end();
  const latencies = report.latencies.sort((a, b) => a - b);
  const usage = process.resourceUsage();
  const result = {
    peer: PEER,
    version: (await import(`${PEER}/package.json`, { with: { type: "json" } })).default.version,
    node: process.version,
    jobs: J,
    workers: WORKERS,
    slots_per_worker: SLOTS,
    submitters: SUBMITTERS,
    offered_rate: RATE,
    seconds: Number(seconds.toFixed(3)),
    jobs_per_second: Math.round(J / seconds),
    start_latency_ms: {
      p50: Number(percentile(latencies, 50).toFixed(2)),
      p95: Number(percentile(latencies, 95).toFixed(2)),
      p99: Number(percentile(latencies, 99).toFixed(2)),
    },
    started: latencies.length,
    worker_cpu_seconds: Number(report.cpu_seconds.toFixed(2)),
    worker_peak_rss_mib: report.peak_rss_mib,
    producer_cpu_seconds: Number(
      ((usage.userCPUTime + usage.systemCPUTime) / 1e6).toFixed(2),
    ),
    completed_over_time: series.filter((_, i) => i % 10 === 0 || i === series.length - 1),
  };
  console.log(JSON.stringify(result));
}

if (values.role === "worker") await worker();
else await producer();
