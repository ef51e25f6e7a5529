/**
 * Which missed ticks a misfire policy runs: pure, and bounded whatever the downtime.
 * @module
 */
import { nextRuns, type NextRunsSpec } from "./next_runs.ts";
import type { MisfirePolicy } from "./schedule_input.ts";

/** Most catch-up runs `run_all` makes at once. */
export const MAX_CATCH_UP_RUNS = 10_000;

/** Runs in (`from`, `to`], at most `limit`, paging 1000 at a time. */
function runsBetween(
  spec: NextRunsSpec,
  from: Temporal.Instant,
  to: Temporal.Instant,
  limit: number,
): Temporal.Instant[] {
  const out: Temporal.Instant[] = [];
  let after = from;
  while (out.length < limit) {
    const page = nextRuns(spec, after, Math.min(1000, limit - out.length));
    for (const run of page) {
      if (Temporal.Instant.compare(run, to) > 0) return out;
      out.push(run);
    }
    if (page.length === 0) return out;
    after = page[page.length - 1];
  }
  return out;
}

/**
 * The missed ticks in (`cursor`, `now`] that the policy runs: none (`skip`), the latest
 * (`run_once`), or every one within `catch_up_window` seconds before `now` (`run_all`, the
 * earliest {@linkcode MAX_CATCH_UP_RUNS} of them, so a huge window never stalls).
 */
export function missedTicks(
  spec: NextRunsSpec,
  s: { cursor: string; misfire_policy: MisfirePolicy; catch_up_window: number },
  now: Temporal.Instant,
): Temporal.Instant[] {
  const cursor = Temporal.Instant.from(s.cursor);
  const since = (seconds: number) => {
    const from = now.subtract({ milliseconds: Math.round(seconds * 1000) });
    return Temporal.Instant.compare(from, cursor) > 0 ? from : cursor;
  };
  switch (s.misfire_policy) {
    case "skip":
      return [];
    case "run_all": {
      return runsBetween(spec, since(s.catch_up_window), now, MAX_CATCH_UP_RUNS);
    }
    default: {
      // Look back in growing windows so a long downtime is never enumerated tick by tick.
      for (const seconds of [60, 3600, 86_400, 32 * 86_400, 367 * 86_400, 31 * 366 * 86_400]) {
        const runs = runsBetween(spec, since(seconds), now, Infinity);
        if (runs.length > 0) return [runs[runs.length - 1]];
      }
      return [];
    }
  }
}
