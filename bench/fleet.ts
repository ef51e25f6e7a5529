/**
 * Fleet benchmark: `deno task bench [--jobs J] [--robots N] [--max-jobs S] [--concurrency C]
 * [--work-ms D] [--backend pglite|postgres|all] [--in-process] [--quick]`.
 *
 * Starts an orchestrator on each backend (embedded PGlite and the local PostgreSQL, in a
 * fresh schema) in this process, and a load process (`bench/fleet_load.ts`: N real
 * WebSocket robots of S slots each, no-op executor sleeping D ms, and the API client) that
 * submits J jobs through `POST /api/v1/jobs` with C requests in flight. `--in-process`
 * runs the robots and the client in this process instead.
 *
 * Measures end-to-end jobs/s (first submission → J `job.completed` applied to the read
 * models), submit-to-assignment latency p50/p95/p99 (the robot's receive time minus the
 * client's send time, wall clock), events appended per second, and the CPU seconds and
 * peak RSS of this process (the orchestrator alone, unless `--in-process`). Prints a
 * table and writes `bench/results/fleet-<date>.json` and one SVG chart per backend
 * (throughput and latency over time) beside it.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { type Backend, BACKENDS, startOrchestrator } from "../tests/_harness.ts";
import { runChartSvg, type SeriesPoint } from "./chart.ts";
import { startRobots, submitJobs, wallNow } from "./fleet_load.ts";

/** Workload of one fleet run. */
export interface FleetOptions {
  /** Jobs submitted. */
  jobs: number;
  /** Robots connected. */
  robots: number;
  /** `max_concurrent_jobs` of each robot. */
  slots: number;
  /** Submissions in flight. */
  concurrency: number;
  /** Simulated work per job, ms. */
  workMs: number;
  /** Robots and API client in this process instead of a separate one. */
  inProcess: boolean;
  /**
   * Open-loop offered load in jobs/s (`--rate`): jobs are sent at this fixed rate whatever
   * their answers (`submitAtRate`), and latency counts from each job's intended send time.
   * 0: closed loop, `concurrency` requests in flight.
   */
  rate?: number;
}

/** What one fleet run measured. */
export interface FleetResult {
  backend: string;
  jobs: number;
  robots: number;
  max_jobs_per_robot: number;
  concurrency: number;
  work_ms: number;
  robots_in_process: boolean;
  /** Open-loop offered load, jobs/s; 0 for a closed-loop run. */
  offered_rate: number;
  seconds: number;
  jobs_per_second: number;
  events_per_second: number;
  events_per_job: number;
  assign_latency_ms: { p50: number; p95: number; p99: number };
  /** CPU seconds (user + system) of the orchestrator's process during the run. */
  orchestrator_cpu_seconds: number;
  /** CPU used per wall second, in cores (1.0 = one core busy). */
  orchestrator_cpu_cores: number;
  /** Highest RSS of the orchestrator's process sampled every 50 ms during the run, MiB. */
  orchestrator_peak_rss_mib: number;
  /** 1-minute load average of the machine at the start and the end of the run. */
  load_average: [number, number];
  /** Throughput and latency per 250 ms bucket. */
  series: SeriesPoint[];
}

/** Value at percentile p (0–100) of an ascending array; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round2 = (n: number) => Number(n.toFixed(2));

/** A load process: the robots and the API client of `bench/fleet_load.ts`. */
class LoadProcess {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;

  constructor(args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./fleet_load.ts", import.meta.url).pathname, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = lines(this.#child.stdout)[Symbol.asyncIterator]();
  }

  /** The next JSON line of `type`; throws when the process ends first. */
  async next<T>(type: string): Promise<T> {
    for (;;) {
      const { value, done } = await this.#lines.next();
      if (done) throw new Error(`load process ended before "${type}"`);
      const message = JSON.parse(value);
      if (message.type === type) return message as T;
    }
  }

  /** Sends a command line. */
  send(line: string): Promise<void> {
    return this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Waits for the exit. */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#child.status;
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, i).trim();
      buffer = buffer.slice(i + 1);
      if (line.startsWith("{")) yield line;
    }
  }
}

/**
 * Runs the fleet workload once on `backend`.
 *
 * @throws {Error} When a submission fails or the load process dies.
 */
export async function runFleet(backend: Backend, o: FleetOptions): Promise<FleetResult> {
  const { store, drop } = await backend.open();
  const t = await startOrchestrator(store, { heartbeatInterval: 30, heartbeatTimeout: 120 });
  let sent = new Map<string, number>();
  const assigned = new Map<string, number>();
  const completedAt: number[] = [];
  let events = 0;
  let counting = false;
  let resolveDone = () => {};
  const allDone = new Promise<void>((resolve) => (resolveDone = resolve));
  t.orchestrator.core.onEvents((batch) => {
    if (!counting) return;
    events += batch.length;
    const at = wallNow();
    for (const e of batch) if (e.type === "job.completed") completedAt.push(at);
    if (completedAt.length >= o.jobs) resolveDone();
  });

  let load: LoadProcess | undefined;
  let fleet: { close(): Promise<void> } | undefined;
  if (o.inProcess) {
    if (o.rate) throw new Error("--rate needs the separate load process (no --in-process)");
    fleet = await startRobots({
      url: t.wsUrl,
      token: t.robotToken,
      robots: o.robots,
      slots: o.slots,
      workMs: o.workMs,
      onAssigned: (id, at) => assigned.set(id, at),
    });
  } else {
    load = new LoadProcess([
      `--ws-url=${t.wsUrl}`,
      `--api-url=${t.url}`,
      `--robot-token=${t.robotToken}`,
      `--api-token=${t.apiToken}`,
      `--robots=${o.robots}`,
      `--slots=${o.slots}`,
      `--work-ms=${o.workMs}`,
      `--jobs=${o.jobs}`,
      `--concurrency=${o.concurrency}`,
      `--rate=${o.rate ?? 0}`,
    ]);
    await load.next("ready");
  }

  let peakRss = Deno.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, Deno.memoryUsage().rss)), 50);
  const cpuBefore = process.cpuUsage();
  const loadBefore = Deno.loadavg()[0];
  counting = true;
  const start = wallNow();
  if (load) {
    await load.send("go");
    await load.next("submitted");
  } else {
    sent = await submitJobs({
      url: t.url,
      apiToken: t.apiToken,
      jobs: o.jobs,
      concurrency: o.concurrency,
    });
  }
  await allDone;
  const end = wallNow();
  counting = false;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);

  if (load) {
    await load.send("stop");
    const report = await load.next<
      { sent: Record<string, number>; assigned: Record<string, number> }
    >("report");
    sent = new Map(Object.entries(report.sent));
    for (const [id, at] of Object.entries(report.assigned)) assigned.set(id, at);
    await load.close();
  } else {
    await fleet!.close();
  }
  await t.stop();
  await drop();

  const seconds = (end - start) / 1000;
  const samples = [...assigned].filter(([id]) => sent.has(id)).map((
    [id, at],
  ) => ({ at, latency: at - sent.get(id)! }));
  const latencies = samples.map((s) => s.latency).sort((a, b) => a - b);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return {
    backend: backend.name,
    jobs: o.jobs,
    robots: o.robots,
    max_jobs_per_robot: o.slots,
    concurrency: o.concurrency,
    work_ms: o.workMs,
    robots_in_process: o.inProcess,
    offered_rate: o.rate ?? 0,
    seconds: Number(seconds.toFixed(3)),
    jobs_per_second: Math.round(o.jobs / seconds),
    events_per_second: Math.round(events / seconds),
    events_per_job: round2(events / o.jobs),
    assign_latency_ms: {
      p50: round2(percentile(latencies, 50)),
      p95: round2(percentile(latencies, 95)),
      p99: round2(percentile(latencies, 99)),
    },
    orchestrator_cpu_seconds: round2(cpuSeconds),
    orchestrator_cpu_cores: round2(cpuSeconds / seconds),
    orchestrator_peak_rss_mib: Math.round(peakRss / 2 ** 20),
    load_average: [loadBefore, Deno.loadavg()[0]],
    series: timeSeries(start, end, completedAt, samples),
  };
}

/** Per 250 ms bucket: completions per second, and latency p50/p99 by assignment time. */
function timeSeries(
  start: number,
  end: number,
  completedAt: number[],
  samples: { at: number; latency: number }[],
): SeriesPoint[] {
  const BUCKET = 250;
  const n = Math.max(1, Math.ceil((end - start) / BUCKET));
  const done = new Array<number>(n).fill(0);
  const lat: number[][] = Array.from({ length: n }, () => []);
  const index = (at: number) => Math.min(n - 1, Math.max(0, Math.floor((at - start) / BUCKET)));
  for (const at of completedAt) done[index(at)]++;
  for (const s of samples) lat[index(s.at)].push(s.latency);
  return done.map((count, i) => {
    const sorted = lat[i].sort((a, b) => a - b);
    return {
      t_s: (i * BUCKET) / 1000,
      jobs_per_second: count * (1000 / BUCKET),
      p50_ms: sorted.length ? round2(percentile(sorted, 50)) : null,
      p99_ms: sorted.length ? round2(percentile(sorted, 99)) : null,
    };
  });
}

/** The table row of a result. */
export function fleetRow(r: FleetResult): string {
  const l = r.assign_latency_ms;
  return `${r.backend.padEnd(9)} ${String(r.offered_rate || "-").padStart(7)} ${
    String(r.jobs_per_second).padStart(6)
  }  ${String(r.events_per_second).padStart(8)}  ${String(r.events_per_job).padStart(6)}  ${
    String(l.p50).padStart(9)
  }  ${String(l.p95).padStart(8)}  ${String(l.p99).padStart(8)}  ${
    String(r.orchestrator_cpu_cores).padStart(5)
  }  ${String(r.orchestrator_peak_rss_mib).padStart(7)}`;
}

/** The header of {@linkcode fleetRow}. */
export const FLEET_HEADER =
  "backend   offered  jobs/s  events/s  ev/job  assign p50       p95       p99  cores  RSS MiB";

/** `bench/results/<name>-<date>` without extension. */
export function resultPath(name: string): string {
  const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "");
  return new URL(`./results/${name}-${stamp}`, import.meta.url).pathname;
}

async function main(): Promise<void> {
  const args = parseArgs({
    args: Deno.args,
    options: {
      jobs: { type: "string" },
      robots: { type: "string", default: "20" },
      concurrency: { type: "string", default: "50" },
      "max-jobs": { type: "string", default: "4" },
      "work-ms": { type: "string", default: "0" },
      backend: { type: "string", default: "all" },
      "in-process": { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      rate: { type: "string", default: "0" },
    },
  });
  const rates = args.values.rate.split(",").map(Number);
  if (rates.some((r) => !(r >= 0))) {
    throw new Error(`--rate: not a list of jobs/s: ${args.values.rate}`);
  }
  const o: FleetOptions = {
    jobs: Number(args.values.jobs ?? (args.values.quick ? 300 : 2000)),
    robots: Number(args.values.robots),
    slots: Number(args.values["max-jobs"]),
    concurrency: Number(args.values.concurrency),
    workMs: Number(args.values["work-ms"]),
    inProcess: args.values["in-process"],
  };
  const results: FleetResult[] = [];
  for (const backend of BACKENDS) {
    if (args.values.backend !== "all" && args.values.backend !== backend.name) continue;
    for (const rate of rates) results.push(await runFleet(backend, { ...o, rate }));
  }
  const load = rates.some((r) => r > 0)
    ? `open loop at ${rates.join(", ")} jobs/s`
    : `${o.concurrency} submitters`;
  const title = `fleet: ${o.jobs} jobs, ${o.robots} robots × ${o.slots} slots ` +
    `(${o.inProcess ? "in this process" : "separate process"}), ${load}, work ${o.workMs} ms`;
  console.log(`\n${title}\n`);
  console.log(FLEET_HEADER);
  for (const r of results) console.log(fleetRow(r));
  console.log(
    `\n${navigator.hardwareConcurrency} CPUs; 1-min load average per run (start → end): ${
      results.map((r) =>
        `${r.backend} ${r.load_average[0].toFixed(2)} → ${r.load_average[1].toFixed(2)}`
      ).join(", ")
    }`,
  );
  const base = resultPath("fleet");
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  for (const r of results) {
    const name = r.offered_rate ? `${r.backend}-${r.offered_rate}` : r.backend;
    await Deno.writeTextFile(
      `${base}-${name}.svg`,
      runChartSvg(`${title}, ${name}`, r.series),
    );
  }
  await Deno.writeTextFile(
    `${base}.json`,
    JSON.stringify({ at: new Date().toISOString(), deno: Deno.version.deno, results }, null, 2) +
      "\n",
  );
  console.log(
    `written ${base}.json and ${
      results.map((r) =>
        `${base}-${r.offered_rate ? `${r.backend}-${r.offered_rate}` : r.backend}.svg`
      )
        .join(", ")
    }`,
  );
}

if (import.meta.main) await main();
