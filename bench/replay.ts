/**
 * Replay benchmark: `deno run -A bench/replay.ts [--jobs N] [--backend all|postgres|pglite]`.
 *
 * Writes a log of N jobs (each submitted, queued, dispatched, started and completed, with
 * a robot's assignment and release: 7 events per job) in batches, on PGlite and on the
 * local PostgreSQL, then reads it with `readAll` (pages of 10,000) and `scanAll`, and folds
 * it into fresh read models with `replayLog` (what start-up, `deno task rebuild` and
 * `deno task replay` do). Prints events/s by wall clock and, because the machine is shared
 * and its load moves, also by CPU time: our process's CPU time and, on PostgreSQL, the
 * server backends' (read from /proc); "cpu ev/s" is events / the larger of the two, what
 * an otherwise idle machine with a core for each would reach. Ratios are to the target of
 * 200,000 events/s (issue 3). Writes `bench/results/replay-<date>.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import postgres from "postgres";
import { replayLog } from "../engine/mod.ts";
import { openEventStore, type SqlEventStore } from "../events/mod.ts";
import { appendCompletedJobs } from "./_completed_history.ts";
import { type Backend, pgliteBackend, TEST_DATABASE_URL } from "../tests/_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    jobs: { type: "string", default: "15000" },
    backend: { type: "string", default: "all" },
  },
});
const JOBS = Number(values.jobs);
const T = "2026-06-01T12:00:00.000Z";
function fill(store: SqlEventStore): Promise<number> {
  return appendCompletedJobs(store, {
    robotId: "r1",
    jobs: JOBS,
    jobId: (i) => `bench-${i}`,
    perAppend: 50,
    at: T,
  });
}

const TARGET = 200_000;

/** CPU time of this process, in ms. */
function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU time, in ms, of the server backends serving this process (PostgreSQL on this host). */
async function serverCpuMs(admin: postgres.Sql | null): Promise<number> {
  if (!admin) return 0;
  const rows = await admin.unsafe(
    "select pid from pg_stat_activity where application_name = $1",
    [APP],
  );
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The backend is on another host or has exited: its time is not counted.
    }
  }
  return ticks * 10;
}

/** `application_name` of this run's connections, to find their server backends. */
const APP = `bench-replay-${Deno.pid}`;

/** The PostgreSQL backend of the tests, with this run's application name. */
const postgresWithName: Backend = {
  name: "postgres",
  async open() {
    const schema = `bench_replay_${Deno.pid}`;
    const reopen = () =>
      openEventStore({
        databaseUrl: TEST_DATABASE_URL,
        dataDir: "unused",
        schema,
        applicationName: APP,
      });
    return {
      store: await reopen(),
      reopen,
      drop: async () => {
        const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
        await sql.unsafe(`drop schema if exists ${schema} cascade`).finally(() => sql.end());
      },
    };
  },
};

interface Figure {
  name: string;
  events: number;
  wall_ms: number;
  client_cpu_ms: number;
  server_cpu_ms: number;
  wall_events_per_s: number;
  cpu_events_per_s: number;
}

async function measure(
  name: string,
  admin: postgres.Sql | null,
  run: () => Promise<number>,
): Promise<Figure> {
  const [wall0, cpu0, server0] = [performance.now(), ownCpuMs(), await serverCpuMs(admin)];
  const events = await run();
  const wall = performance.now() - wall0;
  const client = ownCpuMs() - cpu0;
  const server = (await serverCpuMs(admin)) - server0;
  return {
    name,
    events,
    wall_ms: Math.round(wall),
    client_cpu_ms: Math.round(client),
    server_cpu_ms: Math.round(server),
    wall_events_per_s: Math.round(events / (wall / 1000)),
    cpu_events_per_s: Math.round(events / (Math.max(client, server) / 1000)),
  };
}

console.log(`replay: ${JOBS} jobs, ${JOBS * 7 + 2} events; target ${TARGET} events/s\n`);
console.log(
  "backend   what            wall ev/s   cpu ms (ours/server)   cpu ev/s   wall/target   cpu/target",
);
const results = [];
for (const backend of [pgliteBackend, postgresWithName]) {
  if (values.backend !== "all" && values.backend !== backend.name) continue;
  const { store, drop } = await backend.open();
  const admin = backend.name === "postgres"
    ? postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} })
    : null;
  try {
    let t0 = performance.now();
    const events = await fill(store);
    const writeSeconds = (performance.now() - t0) / 1000;
    const figures: Figure[] = [];
    figures.push(
      await measure("readAll 10000", admin, async () => {
        let after = 0;
        let read = 0;
        for (;;) {
          const batch = await store.readAll({ after, limit: 10_000 });
          if (batch.length === 0) break;
          read += batch.length;
          after = batch[batch.length - 1].globalPosition;
        }
        return read;
      }),
    );
    figures.push(
      await measure("scanAll", admin, async () => {
        let read = 0;
        for await (const page of store.scanAll()) read += page.length;
        return read;
      }),
    );
    figures.push(
      await measure("replayLog", admin, async () => {
        const replay = await replayLog(store);
        if (replay.state.jobs.length !== JOBS || replay.events !== events) {
          throw new Error(
            `replay folded ${replay.events} events, ${replay.state.jobs.length} jobs`,
          );
        }
        return replay.events;
      }),
    );
    t0 = performance.now();
    for (const f of figures) {
      console.log(
        `${backend.name.padEnd(9)} ${f.name.padEnd(15)} ${
          String(f.wall_events_per_s).padStart(9)
        }   ${`${f.client_cpu_ms}/${f.server_cpu_ms}`.padStart(20)}   ${
          String(f.cpu_events_per_s).padStart(8)
        }   ${(f.wall_events_per_s / TARGET).toFixed(2).padStart(11)}   ${
          (f.cpu_events_per_s / TARGET).toFixed(2).padStart(10)
        }`,
      );
    }
    results.push({ backend: backend.name, events, write_seconds: writeSeconds, figures });
  } finally {
    await admin?.end();
    await store.close();
    await drop();
  }
}
const load = await Deno.readTextFile("/proc/loadavg").catch(() => "");
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(
  `./results/replay-${new Date().toISOString().slice(0, 19).replaceAll(":", "")}.json`,
  import.meta.url,
);
await Deno.writeTextFile(
  file,
  JSON.stringify(
    { at: new Date().toISOString(), jobs: JOBS, target: TARGET, loadavg: load.trim(), results },
    null,
    2,
  ) + "\n",
);
console.log(`load average ${load.trim()}; written to ${file.pathname}`);
