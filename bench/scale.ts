/**
 * Scale runs of issue 8, each against the orchestrator as users run it (`main.ts` in its
 * own process, on the local PostgreSQL in a fresh schema):
 *
 *   deno task bench:scale idle-robots [--robots 10000] [--processes 4]
 *   deno task bench:scale queue [--lengths 1000,100000,1000000] [--batch 100] [--rounds 5]
 *   deno task bench:scale cold-start [--events 1000000] [--runs 1] [--schema S] [--main PATH]
 *     [--grow]
 *
 * - idle-robots: N `RobotClient`s in P load processes (`bench/fleet_load.ts`) connect in
 *   waves and stay idle (default heartbeat every 5 s); the orchestrator's RSS before and
 *   after gives the memory per robot. The open-files limit of the children is raised to
 *   the hard limit (`ulimit -n`).
 * - queue: for each length L, L queued jobs (2 events each, written straight into the table
 *   with their hash chain) before the start; then `rounds` times a new robot with `batch`
 *   slots registers and the time from `robot_registered` to its `batch`-th
 *   `job_assignment` is the dispatch cost of the batch. Per-job cost should not grow with L.
 * - cold-start: a log of about E events (completed jobs of 20 robots, 7 events each), then
 *   the time from spawning `main.ts` until `/healthz` answers 200, `runs` times in a row
 *   (stopping it with SIGTERM in between). `--schema S` keeps the log in schema S (filled
 *   when empty, never dropped) for later runs; `--main PATH` starts another `main.ts`
 *   (e.g. an older commit's copy, for before/after figures on the same log). `--grow`:
 *   the log is written while a first orchestrator runs on the empty schema, which is then
 *   stopped with SIGTERM (its shutdown checkpoint; `SHUTDOWN_CHECKPOINT_TIMEOUT=0` in the
 *   environment, which the children inherit, leaves it out: the start-up checkpoint only).
 *
 * Prints the figures and writes them to `bench/results/scale-<run>-<date>.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "../tests/_harness.ts";
import { RawRobot } from "../tests/_raw_robot.ts";
import { addCompletedHistory, addQueuedJobs, BulkLog } from "./_bulk_log.ts";
import { percentile, resultPath } from "./fleet.ts";

const API_TOKEN = "bench-api-token";
const ROBOT_TOKEN = "bench-robot-token";
const MIB = 2 ** 20;

/** Raises the open-files limit of a child to the hard limit, then runs deno with `args`. */
function denoCommand(
  args: string[],
  options: { env?: Record<string, string>; stdin?: "piped" | "null" } = {},
): Deno.Command {
  return new Deno.Command("sh", {
    args: ["-c", 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', Deno.execPath(), ...args],
    env: options.env,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "inherit",
  });
}

/** Resident set size of a process in bytes (Linux `/proc`). */
async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (key: string) => Number(status.match(new RegExp(`${key}:\\s+(\\d+)`))![1]) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/** CPU seconds (user + system) a process has used (Linux `/proc`). */
async function cpuOf(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
    }
  }
}

/** `main.ts` running in its own process on `schema`. */
interface OrchestratorProcess {
  pid: number;
  url: string;
  wsUrl: string;
  /** ms from spawn until the server listened. */
  listeningMs: number;
  /** ms from spawn until `/healthz` answered 200. */
  readyMs: number;
  stop(): Promise<void>;
}

/** Extra flags of the orchestrator's `deno run` (`--profile DIR`: a V8 CPU profile there). */
const orchestratorFlags: string[] = [];

/** The `main.ts` the scale runs start (`--main PATH`: e.g. a copy of an older commit). */
let mainPath = new URL("../main.ts", import.meta.url).pathname;

async function spawnOrchestrator(schema: string): Promise<OrchestratorProcess> {
  const dataDir = await Deno.makeTempDir({ prefix: "orch-scale-" });
  const started = performance.now();
  const child = denoCommand([
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write",
    "--allow-sys",
    ...orchestratorFlags,
    mainPath,
  ], {
    env: {
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_SCHEMA: schema,
      DATA_DIR: dataDir,
      ORCHESTRATOR_HOST: "127.0.0.1",
      ORCHESTRATOR_PORT: "0",
      ORCHESTRATOR_API_TOKEN: API_TOKEN,
      ORCHESTRATOR_ROBOT_TOKEN: ROBOT_TOKEN,
    },
  }).spawn();
  // One reader of stdout (breaking out of a for-await would close the generator).
  const out = lines(child.stdout)[Symbol.asyncIterator]();
  const nextLine = async () => {
    const { value, done } = await out.next();
    return done ? null : value;
  };
  let url = "";
  for (let line = await nextLine(); line !== null; line = await nextLine()) {
    const m = line.match(/listening on (http:\/\/[\d.]+:\d+)/);
    if (m) {
      url = m[1];
      break;
    }
  }
  if (!url) throw new Error("orchestrator did not start");
  const listeningMs = performance.now() - started;
  // Keep draining stdout so that the child never blocks on a full pipe; main.ts installs
  // its SIGTERM handler right after printing "…; ready" (a little after /healthz is 200).
  const handlersInstalled = (async () => {
    for (let line = await nextLine(); line !== null; line = await nextLine()) {
      if (line.endsWith("; ready")) break;
    }
    (async () => {
      for (let line = await nextLine(); line !== null; line = await nextLine()) {
        if (line.startsWith("shutdown checkpoint")) console.error(line);
      }
    })();
  })();
  let exited: Deno.CommandStatus | null = null;
  child.status.then((status) => (exited = status));
  for (;;) {
    if (exited) throw new Error(`orchestrator exited during start: ${JSON.stringify(exited)}`);
    const res = await fetch(`${url}/healthz`).catch(() => null);
    await res?.body?.cancel();
    if (res?.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const readyMs = performance.now() - started;
  // The `sh` wrapper exec'd deno: the child's pid is the orchestrator's.
  return {
    pid: child.pid,
    url,
    wsUrl: url.replace("http", "ws") + "/ws/robot",
    listeningMs,
    readyMs,
    async stop() {
      await handlersInstalled;
      const t = performance.now();
      child.kill("SIGTERM");
      const status = await child.status;
      console.error(
        `orchestrator stopped in ${Math.round(performance.now() - t)} ms: ${
          JSON.stringify(status)
        }`,
      );
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

function newSchema(run: string): string {
  return `bench_${run}_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
}

async function dropSchema(schema: string): Promise<void> {
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`drop schema if exists ${schema} cascade`);
  } finally {
    await sql.end();
  }
}

async function idleRobots(robots: number, processes: number) {
  const schema = newSchema("idle");
  await (await BulkLog.open(TEST_DATABASE_URL, schema)).close();
  const orch = await spawnOrchestrator(schema);
  const before = await rssOf(orch.pid);
  const cpuBefore = await cpuOf(orch.pid);
  const t0 = performance.now();
  const per = Math.ceil(robots / processes);
  const loads = Array.from({ length: processes }, (_, p) => {
    const child = denoCommand([
      "run",
      "-A",
      new URL("./fleet_load.ts", import.meta.url).pathname,
      `--ws-url=${orch.wsUrl}`,
      `--api-url=${orch.url}`,
      `--robot-token=${ROBOT_TOKEN}`,
      `--api-token=${API_TOKEN}`,
      `--robots=${Math.min(per, robots - p * per)}`,
      "--slots=1",
      "--connect-batch=100",
      `--name-prefix=idle${p}`,
    ], { stdin: "piped" }).spawn();
    return { child, out: lines(child.stdout)[Symbol.asyncIterator]() };
  });
  for (const { out } of loads) {
    for (let r = await out.next(); !r.done; r = await out.next()) {
      if (r.value.includes('"ready"')) break;
    }
  }
  const connectSeconds = (performance.now() - t0) / 1000;
  const res = await fetch(`${orch.url}/api/v1/robots`, {
    headers: { authorization: `Bearer ${API_TOKEN}` },
  });
  const online = ((await res.json()).robots as { status: string }[])
    .filter((r) => r.status === "online").length;
  // Idle for two heartbeat intervals (5 s each by default), then measure.
  const cpuIdle0 = await cpuOf(orch.pid);
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  const cpuIdle = (await cpuOf(orch.pid)) - cpuIdle0;
  const after = await rssOf(orch.pid);
  const loadRss = (await Promise.all(loads.map(({ child }) => rssOf(child.pid))))
    .reduce((n, r) => n + r.rss, 0);
  const connectCpu = cpuIdle0 - cpuBefore;
  for (const { child } of loads) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("stop\n"));
    await w.close();
  }
  await Promise.all(loads.map(async ({ child, out }) => {
    while (!(await out.next()).done) { /* drain until exit */ }
    await child.status;
  }));
  await orch.stop();
  await dropSchema(schema);
  return {
    robots,
    online,
    load_processes: processes,
    connect_seconds: Number(connectSeconds.toFixed(1)),
    orchestrator_rss_before_mib: Math.round(before.rss / MIB),
    orchestrator_rss_after_mib: Math.round(after.rss / MIB),
    orchestrator_peak_rss_mib: Math.round(after.peak / MIB),
    rss_per_robot_kib: Math.round((after.rss - before.rss) / robots / 1024),
    orchestrator_cpu_seconds_connecting: Number(connectCpu.toFixed(1)),
    orchestrator_cpu_cores_idle: Number((cpuIdle / 10).toFixed(3)),
    robot_processes_rss_mib: Math.round(loadRss / MIB),
  };
}

async function queueRun(length: number, batch: number, rounds: number) {
  const schema = newSchema("queue");
  const t0 = performance.now();
  const log = await BulkLog.open(TEST_DATABASE_URL, schema);
  await addQueuedJobs(log, "q", length);
  await log.close();
  const fillSeconds = (performance.now() - t0) / 1000;
  const orch = await spawnOrchestrator(schema);
  const perJob: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const robot = new RawRobot(orch.wsUrl, ROBOT_TOKEN, `queue-bench-${r}`);
    await robot.register({ max_concurrent_jobs: batch });
    const t = performance.now();
    for (let i = 0; i < batch; i++) await robot.next("job_assignment", AbortSignal.timeout(60_000));
    perJob.push((performance.now() - t) / batch);
    robot.kill();
    await robot.closed;
  }
  const rss = await rssOf(orch.pid);
  await orch.stop();
  await dropSchema(schema);
  const sorted = [...perJob].sort((a, b) => a - b);
  return {
    queue_length: length,
    events_in_log: 2 * length,
    fill_seconds: Number(fillSeconds.toFixed(1)),
    start_to_ready_seconds: Number((orch.readyMs / 1000).toFixed(2)),
    batch,
    rounds,
    dispatch_ms_per_job_median: Number(percentile(sorted, 50).toFixed(3)),
    dispatch_ms_per_job_each: perJob.map((n) => Number(n.toFixed(3))),
    orchestrator_rss_mib: Math.round(rss.rss / MIB),
  };
}

/** Events in `schema`'s `events` table (0 when there is none). */
async function eventsIn(schema: string): Promise<number> {
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    const [{ table }] = await sql.unsafe(`select to_regclass('${schema}.events')::text as table`);
    if (table === null) return 0;
    const [{ n }] = await sql.unsafe(`select count(*)::int8 as n from ${schema}.events`);
    return Number(n);
  } finally {
    await sql.end();
  }
}

/**
 * Cold start: fills a log of about `events` events (unless `keepSchema` names a schema
 * that holds one already), then starts `main.ts` `runs` times in a row on it and measures
 * each start until `/healthz` is 200. The first start of a fresh log finds no start-up
 * snapshot; each start writes one when it stops, so later starts measure a restart.
 */
async function coldStart(
  events: number,
  runs: number,
  keepSchema: string | undefined,
  grow: boolean,
) {
  const schema = keepSchema ?? newSchema("cold");
  const t0 = performance.now();
  let written = await eventsIn(schema);
  let jobs: number | null = null;
  let previousStop: string | null = null;
  if (written === 0) {
    // --grow: the log is appended while a previous orchestrator runs (started on the empty
    // log, it folds every event live), which then stops with SIGTERM, as a node that ran
    // for days would.
    const previous = grow ? await spawnOrchestrator(schema) : null;
    const log = await BulkLog.open(TEST_DATABASE_URL, schema);
    jobs = await addCompletedHistory(log, events);
    await log.close();
    written = log.written;
    if (previous) {
      // Polls /healthz until the previous run applied the whole log (a benchmark measures
      // wall time; tests never poll like this).
      for (;;) {
        const res = await fetch(`${previous.url}/healthz`);
        if ((await res.json()).position >= written) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      const t = performance.now();
      await previous.stop();
      previousStop = `${Math.round(performance.now() - t)} ms`;
    }
  }
  const fillSeconds = (performance.now() - t0) / 1000;
  const starts = [];
  for (let r = 0; r < runs; r++) {
    const load = Deno.loadavg()[0];
    const orch = await spawnOrchestrator(schema);
    const rss = await rssOf(orch.pid);
    const cpu = await cpuOf(orch.pid);
    await orch.stop();
    const start = {
      healthz_200_seconds: Number((orch.readyMs / 1000).toFixed(2)),
      listening_ms: Math.round(orch.listeningMs),
      replay_events_per_second: Math.round(written / (orch.readyMs / 1000)),
      orchestrator_rss_mib: Math.round(rss.rss / MIB),
      orchestrator_peak_rss_mib: Math.round(rss.peak / MIB),
      orchestrator_cpu_seconds: cpu,
      load_average_1min_before: load,
    };
    console.log(JSON.stringify(start));
    starts.push(start);
  }
  if (!keepSchema) await dropSchema(schema);
  const sorted = starts.map((s) => s.healthz_200_seconds).sort((a, b) => a - b);
  return {
    events_in_log: written,
    jobs,
    schema: keepSchema ?? null,
    main: mainPath,
    fill_seconds: Number(fillSeconds.toFixed(1)),
    grown_while_running: grow,
    previous_run_stop: previousStop,
    shutdown_checkpoint_timeout: Deno.env.get("SHUTDOWN_CHECKPOINT_TIMEOUT") ?? null,
    ...starts[0],
    healthz_200_seconds_median: sorted.length ? percentile(sorted, 50) : null,
    starts,
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      robots: { type: "string", default: "10000" },
      processes: { type: "string", default: "4" },
      lengths: { type: "string", default: "1000,100000,1000000" },
      batch: { type: "string", default: "100" },
      rounds: { type: "string", default: "5" },
      events: { type: "string", default: "1000000" },
      profile: { type: "string" },
      runs: { type: "string", default: "1" },
      schema: { type: "string" },
      main: { type: "string" },
      grow: { type: "boolean", default: false },
    },
  });
  if (values.main) mainPath = await Deno.realPath(values.main);
  if (values.profile) orchestratorFlags.push("--cpu-prof", `--cpu-prof-dir=${values.profile}`);
  const run = positionals[0];
  let result: unknown;
  const command = `deno task bench:scale ${Deno.args.join(" ")}`;
  if (run === "idle-robots") {
    result = await idleRobots(Number(values.robots), Number(values.processes));
  } else if (run === "queue") {
    const rows = [];
    for (const length of values.lengths.split(",").map(Number)) {
      const row = await queueRun(length, Number(values.batch), Number(values.rounds));
      console.log(JSON.stringify(row));
      rows.push(row);
    }
    result = rows;
  } else if (run === "cold-start") {
    result = await coldStart(
      Number(values.events),
      Number(values.runs),
      values.schema,
      values.grow,
    );
  } else {
    console.error("usage: deno task bench:scale idle-robots|queue|cold-start [options]");
    Deno.exit(2);
  }
  console.log(JSON.stringify(result, null, 2));
  const file = `${resultPath(`scale-${run}`)}.json`;
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    file,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        command,
        deno: Deno.version.deno,
        cpus: navigator.hardwareConcurrency,
        load_average_at_end: Deno.loadavg(),
        result,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`written ${file}`);
  Deno.exit(0); // the robots' pending AbortSignal.timeout timers would hold the process
}

if (import.meta.main) await main();
