/**
 * Peer benchmark: `deno task bench:peers [--jobs J] [--robots W] [--max-jobs S]
 * [--concurrency C] [--rate R] [--quick]`.
 *
 * The same workload — J no-op jobs, W workers × S slots at once, C submissions in
 * flight (or, with `--rate R`, sent open loop at R jobs/s, latency from each job's intended
 * send time), on the local PostgreSQL in a fresh schema each — through the orchestrator
 * (`runFleet` of `bench/fleet.ts`: robots as real WebSocket clients in a separate process)
 * and through `graphile-worker` and `pg-boss` on Node.js (`bench/peers/peer.mjs`, versions
 * pinned in `bench/peers/package-lock.json`, installed here with `npm ci`), in one run.
 * Prints one table (jobs/s end to end, enqueue-to-start latency p50/p95/p99 in ms, our
 * ratio to each peer), ends with `ratio_vs_graphile_worker=<number>`, and writes
 * `bench/results/peers-<date>.json` and the chart of our run beside it.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { postgresBackend, TEST_DATABASE_URL } from "../tests/_harness.ts";
import { type FleetOptions, resultPath, runFleet } from "./fleet.ts";
import { runChartSvg } from "./chart.ts";

const PEERS = ["graphile-worker", "pg-boss"] as const;
const PEERS_DIR = new URL("./peers/", import.meta.url).pathname;

interface Row {
  system: string;
  version: string;
  jobs_per_second: number;
  latency_ms: { p50: number; p95: number; p99: number };
  seconds: number;
  cpu_seconds: number;
  peak_rss_mib: number;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "inherit" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      jobs: { type: "string" },
      robots: { type: "string", default: "20" },
      "max-jobs": { type: "string", default: "4" },
      concurrency: { type: "string", default: "50" },
      quick: { type: "boolean", default: false },
      rate: { type: "string", default: "0" },
      "no-install": { type: "boolean", default: false },
    },
  });
  const o: FleetOptions = {
    jobs: Number(values.jobs ?? (values.quick ? 300 : 2000)),
    robots: Number(values.robots),
    slots: Number(values["max-jobs"]),
    concurrency: Number(values.concurrency),
    workMs: 0,
    inProcess: false,
    rate: Number(values.rate),
  };
  if (!(o.rate! >= 0)) throw new Error(`--rate: not a number of jobs/s: ${values.rate}`);
  if (!values["no-install"]) {
    console.log("npm ci in bench/peers …");
    await run("npm", ["ci", "--no-audit", "--no-fund", "--prefer-offline"], PEERS_DIR);
  }
  const node = (await run("node", ["--version"])).trim();
  const loadStart = Deno.loadavg()[0];

  console.log(`orchestrator (postgres) …`);
  const ours = await runFleet(postgresBackend, o);
  const rows: Row[] = [{
    system: "orchestrator",
    version: `deno ${Deno.version.deno}`,
    jobs_per_second: ours.jobs_per_second,
    latency_ms: ours.assign_latency_ms,
    seconds: ours.seconds,
    cpu_seconds: ours.orchestrator_cpu_seconds,
    peak_rss_mib: ours.orchestrator_peak_rss_mib,
  }];
  const peers: Record<string, unknown>[] = [];
  for (const peer of PEERS) {
    console.log(`${peer} …`);
    const out = await run("node", [
      `${PEERS_DIR}peer.mjs`,
      `--peer=${peer}`,
      `--jobs=${o.jobs}`,
      `--workers=${o.robots}`,
      `--slots=${o.slots}`,
      `--submitters=${o.concurrency}`,
      `--rate=${o.rate}`,
      `--database-url=${TEST_DATABASE_URL}`,
    ]);
    const result = JSON.parse(out.trim().split("\n").at(-1)!);
    peers.push(result);
    rows.push({
      system: peer,
      version: `${result.version} (node ${node})`,
      jobs_per_second: result.jobs_per_second,
      latency_ms: result.start_latency_ms,
      seconds: result.seconds,
      cpu_seconds: result.worker_cpu_seconds,
      peak_rss_mib: result.worker_peak_rss_mib,
    });
  }

  const ratio = (peer: string) => {
    const row = rows.find((r) => r.system === peer)!;
    return Number((ours.jobs_per_second / row.jobs_per_second).toFixed(2));
  };
  console.log(
    `\npeers: ${o.jobs} no-op jobs, ${o.robots} workers × ${o.slots} slots, ` +
      `${o.rate ? `open loop at ${o.rate} jobs/s` : `${o.concurrency} submitters`}, PostgreSQL at ${
        new URL(TEST_DATABASE_URL).host
      }\n`,
  );
  console.log(
    "system            version                       jobs/s   p50 ms   p95 ms   p99 ms  " +
      "ours/this  CPU s  RSS MiB",
  );
  for (const r of rows) {
    console.log(
      `${r.system.padEnd(17)} ${r.version.padEnd(28)} ${String(r.jobs_per_second).padStart(7)} ${
        String(r.latency_ms.p50).padStart(8)
      } ${String(r.latency_ms.p95).padStart(8)} ${String(r.latency_ms.p99).padStart(8)}  ${
        (r.system === "orchestrator" ? "" : ratio(r.system).toFixed(2)).padStart(9)
      }  ${String(r.cpu_seconds).padStart(5)}  ${String(r.peak_rss_mib).padStart(7)}`,
    );
  }
  const machine = {
    cpus: navigator.hardwareConcurrency,
    load_average_1m: [loadStart, Deno.loadavg()[0]],
  };
  console.log(
    `\nmachine: ${machine.cpus} CPUs, 1-min load average ${
      machine.load_average_1m[0].toFixed(2)
    } at ` +
      `the start, ${
        machine.load_average_1m[1].toFixed(2)
      } at the end (other work shares the machine)`,
  );
  console.log(
    "latency: orchestrator = submit to assignment received by the robot; peers = enqueue to " +
      "handler start. CPU s and RSS: the orchestrator's process / the peer's worker process.",
  );
  const base = resultPath("peers");
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    `${base}-orchestrator.svg`,
    runChartSvg(`peers run: orchestrator, ${o.jobs} jobs on PostgreSQL`, ours.series),
  );
  const ratios = Object.fromEntries(PEERS.map((p) => [p, ratio(p)]));
  await Deno.writeTextFile(
    `${base}.json`,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        deno: Deno.version.deno,
        node,
        machine,
        workload: o,
        table: rows,
        ratios,
        orchestrator: ours,
        peers,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`written ${base}.json`);
  console.log(`ratio_vs_pg_boss=${ratios["pg-boss"]}`);
  console.log(`ratio_vs_graphile_worker=${ratios["graphile-worker"]}`);
}

if (import.meta.main) await main();
