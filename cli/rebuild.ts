/**
 * `deno task rebuild`: rebuilds every read model from the log and prints a summary.
 *
 * The read models (jobs, robots, queue, dashboard) are kept in memory and rebuilt
 * deterministically from the log at every start; this command runs that same fold on its
 * own, so an operator can check that the log replays and how long it takes.
 *
 * @module
 */
import { replayLog } from "../engine/mod.ts";
import { openConfiguredStore, progressBar } from "./open_configured_store.ts";

const store = await openConfiguredStore();
try {
  const { events, elapsedMs, state } = await replayLog(store, {
    onProgress: progressBar("rebuild"),
  });
  const byStatus: Record<string, number> = {};
  for (const j of state.jobs) byStatus[j.status] = (byStatus[j.status] ?? 0) + 1;
  console.error("");
  console.log(JSON.stringify(
    {
      events,
      elapsed_ms: Math.round(elapsedMs),
      events_per_second: Math.round(events / Math.max(elapsedMs / 1000, 1e-9)),
      position: state.position,
      jobs: state.jobs.length,
      jobs_by_status: byStatus,
      robots: state.robots.length,
      queued: state.queue.length,
      dashboard: state.dashboard,
    },
    null,
    2,
  ));
} finally {
  await store.close();
}
