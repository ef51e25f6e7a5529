/**
 * Fleet benchmark: `deno task bench [--jobs J] [--robots N] [--concurrency C]`.
 *
 * Starts an orchestrator on each backend (embedded PGlite and the local PostgreSQL), N
 * real WebSocket robots with a no-op executor (work of 0 ms), submits J jobs through the
 * API with C requests in flight, and measures end-to-end jobs/s (submitted → completed
 * and projected), submit-to-assignment latency (the robot's receive time minus the
 * client's send time), and events appended per second. Prints a table and writes
 * `bench/results/fleet-<date>.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { RobotClient } from "../robot/robot_client.ts";
import { type Backend, BACKENDS, startOrchestrator } from "../tests/_harness.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    jobs: { type: "string", default: "2000" },
    robots: { type: "string", default: "20" },
    concurrency: { type: "string", default: "50" },
    "max-jobs": { type: "string", default: "4" },
    backend: { type: "string", default: "all" },
  },
});
const J = Number(args.values.jobs);
const N = Number(args.values.robots);
const C = Number(args.values.concurrency);
const PER_ROBOT = Number(args.values["max-jobs"]);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const noop = () =>
  Promise.resolve({
    status: "completed" as const,
    outputs: {},
    logs: [],
    execution_time: 0,
    node_results: {},
  });

async function run(backend: Backend) {
  const { store, drop } = await backend.open();
  const t = await startOrchestrator(store, { heartbeatInterval: 30, heartbeatTimeout: 120 });
  const sentAt = new Map<string, number>();
  const assignedAt = new Map<string, number>();
  const robots = Array.from({ length: N }, (_, i) =>
    new RobotClient({
      url: t.wsUrl,
      token: t.robotToken,
      name: `bench-${i}`,
      maxConcurrentJobs: PER_ROBOT,
      executor: noop as never,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    }));
  for (const r of robots) {
    r.on("message", (m) => {
      if (m.type === "job_assignment") {
        assignedAt.set(String((m.payload as { job_id: string }).job_id), performance.now());
      }
    });
  }
  await Promise.all(robots.map((r) => r.start()));
  const workflow = { metadata: { name: "bench" }, nodes: {}, connections: [] };
  const positionBefore = t.orchestrator.core.position;
  const eventsBefore = (await store.readAll({ limit: 1_000_000 })).length;
  let completed = 0;
  const allDone = new Promise<void>((resolve) => {
    t.orchestrator.core.onEvents((events) => {
      for (const e of events) if (e.type === "job.completed") completed++;
      if (completed >= J) resolve();
    });
  });
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < J) {
      next++;
      const jobId = crypto.randomUUID();
      const sent = performance.now();
      const res = await fetch(`${t.url}/api/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.apiToken}` },
        body: JSON.stringify({ workflow }),
      });
      const body = await res.json();
      if (res.status !== 201) throw new Error(JSON.stringify(body));
      sentAt.set(body.job_id ?? jobId, sent);
    }
  }));
  await allDone;
  const seconds = (performance.now() - start) / 1000;
  const events = (await store.readAll({ limit: 10_000_000 })).length - eventsBefore;
  const latencies = [...assignedAt].map(([id, at]) => at - (sentAt.get(id) ?? at)).sort((a, b) =>
    a - b
  );
  await Promise.all(robots.map((r) => r.close()));
  await t.stop();
  await drop();
  void positionBefore;
  return {
    backend: backend.name,
    jobs: J,
    robots: N,
    max_jobs_per_robot: PER_ROBOT,
    concurrency: C,
    seconds: Number(seconds.toFixed(3)),
    jobs_per_second: Math.round(J / seconds),
    events_per_second: Math.round(events / seconds),
    events_per_job: Number((events / J).toFixed(2)),
    assign_latency_ms: {
      p50: Number(percentile(latencies, 50).toFixed(2)),
      p95: Number(percentile(latencies, 95).toFixed(2)),
      p99: Number(percentile(latencies, 99).toFixed(2)),
    },
  };
}

const results = [];
for (const backend of BACKENDS) {
  if (args.values.backend !== "all" && args.values.backend !== backend.name) continue;
  results.push(await run(backend));
}
console.log(`\nfleet: ${J} jobs, ${N} robots × ${PER_ROBOT} slots, ${C} submitters, no-op work\n`);
console.log("backend   jobs/s  events/s  ev/job  assign p50   p95      p99 (ms)");
for (const r of results) {
  console.log(
    `${r.backend.padEnd(9)} ${String(r.jobs_per_second).padStart(6)}  ${
      String(r.events_per_second).padStart(8)
    }  ${String(r.events_per_job).padStart(6)}  ${String(r.assign_latency_ms.p50).padStart(9)}  ${
      String(r.assign_latency_ms.p95).padStart(7)
    }  ${String(r.assign_latency_ms.p99).padStart(7)}`,
  );
}
if (results.length === 2) {
  console.log(
    `\npostgres / pglite throughput ratio: ${
      (results[1].jobs_per_second / results[0].jobs_per_second).toFixed(2)
    }`,
  );
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(
  `./results/fleet-${new Date().toISOString().slice(0, 19).replaceAll(":", "")}.json`,
  import.meta.url,
);
await Deno.writeTextFile(
  file,
  JSON.stringify({ at: new Date().toISOString(), deno: Deno.version.deno, results }, null, 2) +
    "\n",
);
console.log(`written ${file.pathname}`);
