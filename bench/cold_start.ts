/**
 * Cold start benchmark (issue 8): `deno run -A bench/cold_start.ts [--events N] [--keep]`.
 *
 * Writes a log of N events (default 1,000,000; jobs submitted, queued, dispatched, started
 * and completed, each assigned to and released by one of four robots: 7 events per job) in
 * a schema of the local PostgreSQL, by bulk appends from four writers. Then starts the
 * orchestrator (`main.ts`, a real process) on that schema and measures the time from the
 * spawn to the first `200` of `/healthz` (every event folded into the read models), and the
 * replay time the orchestrator itself prints. Target: ≤ 10 s for 1,000,000 events.
 *
 * `--keep` leaves the schema (`bench_cold_<N>`) in place and reuses it on the next run.
 * Writes `bench/results/cold-start-<date>.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { openEventStore, type SqlEventStore } from "../events/mod.ts";
import { appendCompletedJobs } from "./_completed_history.ts";
import { TEST_DATABASE_URL } from "../tests/_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    events: { type: "string", default: "1000000" },
    keep: { type: "boolean", default: false },
  },
});
const EVENTS = Number(values.events);
const WRITERS = 4;
const PER_APPEND = 50;
const TARGET_MS = 10_000;
const schema = `bench_cold_${EVENTS}`;
const T = new Date().toISOString();
/** One writer: its robot, then its share of the jobs, 50 per append. */
function writer(store: SqlEventStore, w: number, jobs: number): Promise<number> {
  return appendCompletedJobs(store, {
    robotId: `r${w}`,
    jobs,
    jobId: (i) => `cold-${w}-${i}`,
    perAppend: PER_APPEND,
    at: T,
  });
}

const store = await openEventStore({
  databaseUrl: TEST_DATABASE_URL,
  dataDir: "unused",
  schema,
  maxConnections: WRITERS,
});
let writeSeconds = 0;
try {
  const have = await store.currentPosition();
  if (have === 0) {
    const jobsPerWriter = Math.ceil((EVENTS - 2 * WRITERS) / 7 / WRITERS);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: WRITERS }, (_, w) => writer(store, w, jobsPerWriter)),
    );
    writeSeconds = (performance.now() - t0) / 1000;
  }
} finally {
  await store.close();
}
const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
const [{ n }] = await sql.unsafe(`select count(*)::int8 as n from ${schema}.events`);
const events = Number(n);
console.log(
  `log: ${events} events in schema ${schema}` +
    (writeSeconds ? ` (written in ${writeSeconds.toFixed(0)} s)` : " (reused)"),
);

/** CPU time (user + system) of a process on this host, in ms. */
async function processCpuMs(pid: number): Promise<number> {
  const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A port nobody listens on now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

const dataDir = await Deno.makeTempDir({ prefix: "orch-cold-" });
const port = freePort();
const t0 = performance.now();
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", "main.ts"],
  cwd: new URL("..", import.meta.url),
  env: {
    DATABASE_URL: TEST_DATABASE_URL,
    DATABASE_SCHEMA: schema,
    DATA_DIR: dataDir,
    ORCHESTRATOR_HOST: "127.0.0.1",
    ORCHESTRATOR_PORT: String(port),
    ORCHESTRATOR_API_TOKEN: "bench-api-token",
    ORCHESTRATOR_ROBOT_TOKEN: "bench-robot-token",
    SEAL_INTERVAL: "0",
  },
  stdout: "piped",
  stderr: "inherit",
}).spawn();
let readyMs = NaN;
let listeningMs = NaN;
let cpuMs = NaN;
let position = 0;
const lines = (async () => {
  for await (const _ of child.stdout) { /* the orchestrator's log lines are not needed */ }
})();
try {
  // Polls /healthz (a benchmark measures wall time; tests never poll like this).
  for (;;) {
    const answer = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
    if (answer && Number.isNaN(listeningMs)) listeningMs = performance.now() - t0;
    if (answer?.status === 200) {
      readyMs = performance.now() - t0;
      position = (await answer.json()).position;
      cpuMs = await processCpuMs(child.pid);
      break;
    }
    await answer?.body?.cancel();
    if (performance.now() - t0 > 300_000) throw new Error("not ready after 300 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
} finally {
  child.kill("SIGTERM");
  await child.status;
  await lines;
  await Deno.remove(dataDir, { recursive: true });
}
if (!values.keep) await sql.unsafe(`drop schema if exists ${schema} cascade`);
await sql.end();

const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "")).trim();
const replayMs = readyMs - listeningMs;
console.log(
  `cold start: /healthz ready after ${(readyMs / 1000).toFixed(2)} s: listening after ` +
    `${(listeningMs / 1000).toFixed(2)} s, log replayed in ${(replayMs / 1000).toFixed(2)} s ` +
    `(${Math.round(events / (replayMs / 1000))} events/s); position ${position}; ` +
    `orchestrator CPU ${(cpuMs / 1000).toFixed(2)} s`,
);
console.log(
  `ratio to the ${TARGET_MS / 1000} s target: ${(readyMs / TARGET_MS).toFixed(2)} ` +
    `(≤ 1 meets it); load average ${load}`,
);
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(
  `./results/cold-start-${new Date().toISOString().slice(0, 19).replaceAll(":", "")}.json`,
  import.meta.url,
);
await Deno.writeTextFile(
  file,
  JSON.stringify(
    {
      at: new Date().toISOString(),
      events,
      ready_ms: Math.round(readyMs),
      listening_ms: Math.round(listeningMs),
      replay_ms: Math.round(replayMs),
      orchestrator_cpu_ms: cpuMs,
      target_ms: TARGET_MS,
      loadavg: load,
    },
    null,
    2,
  ) + "\n",
);
console.log(`written to ${file.pathname}`);
