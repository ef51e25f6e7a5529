/**
 * Cost of the alert fold in a replay: `deno run -A bench/alert_fold.ts [--jobs N] [--rounds R]`.
 *
 * Builds in memory the replay benchmark's synthetic history (`_completed_history.ts`: 7
 * events per job) with a third of the jobs failed, then folds it in pages of 1,000 events
 * the way start-up does (`EngineCore.applyFromLog`), once without and once with the alert
 * monitor listening (every kind on), and prints the CPU time per event of each and of the
 * monitor alone (its `apply` timed by itself). CPU time, not wall clock, because the machine
 * is shared. Writes `bench/results/alert-fold-<date>.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { AlertMonitor } from "../alerts/mod.ts";
import { DEFAULT_ENGINE_CONFIG, EngineCore, ManualClock } from "../engine/mod.ts";
import type { RecordedEvent, SqlEventStore, StreamAppend } from "../events/mod.ts";
import { appendCompletedJobs } from "./_completed_history.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    jobs: { type: "string", default: "100000" },
    rounds: { type: "string", default: "3" },
  },
});
const JOBS = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const T = "2026-06-01T12:00:00.000Z";

/** Records appends as the log would, without a database. */
function captureStore(into: RecordedEvent[]): SqlEventStore {
  const versions = new Map<string, number>();
  return {
    append(writes: StreamAppend[]) {
      for (const w of writes) {
        let v = versions.get(w.streamId) ?? 0;
        for (const e of w.events) {
          let type = e.type;
          let data = e.data;
          // A third of the jobs fail: the error-rate window has work to do.
          if (type === "job.completed" && into.length % 3 === 0) {
            type = "job.failed";
            data = { ...data, error: "boom", result: null };
          }
          into.push({
            globalPosition: into.length + 1,
            streamId: w.streamId,
            streamVersion: ++v,
            eventId: crypto.randomUUID(),
            type,
            data,
            metadata: {},
            recordedAt: new Date(T),
          });
        }
        versions.set(w.streamId, v);
      }
      return Promise.resolve({ versions: {}, events: [] });
    },
  } as unknown as SqlEventStore;
}

const events: RecordedEvent[] = [];
await appendCompletedJobs(captureStore(events), {
  robotId: "r1",
  jobs: JOBS,
  jobId: (i) => `bench-${i}`,
  perAppend: 50,
  at: T,
});

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function fold(withAlerts: boolean): { total: number; monitor: number } {
  const clock = new ManualClock(Date.parse(T));
  const core = new EngineCore({} as SqlEventStore, clock, DEFAULT_ENGINE_CONFIG);
  let monitorMs = 0;
  if (withAlerts) {
    const monitor = new AlertMonitor({ store: {} as SqlEventStore, clock });
    core.onEvents((batch) => {
      const t = cpuMs();
      monitor.apply(batch);
      monitorMs += cpuMs() - t;
    });
  }
  const start = cpuMs();
  for (let i = 0; i < events.length; i += 1000) core.applyFromLog(events.slice(i, i + 1000));
  return { total: cpuMs() - start, monitor: monitorMs };
}

const rounds = [];
for (let r = 0; r < ROUNDS; r++) {
  const without = fold(false);
  const withAlerts = fold(true);
  const perEvent = (ms: number) => Math.round((ms * 1000 / events.length) * 1000) / 1000;
  const round = {
    fold_us_per_event: perEvent(without.total),
    fold_with_alerts_us_per_event: perEvent(withAlerts.total),
    alert_monitor_us_per_event: perEvent(withAlerts.monitor),
  };
  rounds.push(round);
  console.log(
    `round ${
      r + 1
    }: fold ${round.fold_us_per_event} µs/event, with alerts ${round.fold_with_alerts_us_per_event} µs/event (the monitor's apply: ${round.alert_monitor_us_per_event} µs/event), ${events.length} events`,
  );
}
const load = await Deno.readTextFile("/proc/loadavg").catch(() => "");
console.log(`load average: ${load.trim()}`);
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(
  `./results/alert-fold-${new Date().toISOString().slice(0, 19).replaceAll(":", "")}.json`,
  import.meta.url,
);
await Deno.writeTextFile(
  file,
  JSON.stringify(
    {
      at: new Date().toISOString(),
      jobs: JOBS,
      events: events.length,
      loadavg: load.trim(),
      rounds,
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${file.pathname}`);
