/**
 * Point-in-time replay: folds the log into fresh read models, optionally stopping at an
 * instant. The live orchestrator's start-up does the same fold, so replaying the whole
 * log gives exactly the live read models.
 *
 * @module
 */
import type { SqlEventStore } from "../events/mod.ts";
import type { Clock } from "./clock.ts";
import { DEFAULT_ENGINE_CONFIG, EngineCore } from "./orchestrator_engine.ts";
import { type ReadModelsSummary, summarizeReadModels } from "./read_models.ts";

/** Options of {@linkcode replayLog}. */
export interface ReplayLogOptions {
  /** Fold only events recorded at or before this instant. @default no limit */
  until?: Date;
  /** Events read per query. @default the store's (1000) */
  batchSize?: number;
  /** Called after each page with the number of events folded so far. */
  onProgress?: (folded: number) => void;
  signal?: AbortSignal;
  /** Summarise only this org's jobs, robots, queue and dashboard. @default every org */
  orgId?: string;
}

/** Result of {@linkcode replayLog}. */
export interface ReplayResult {
  /** Events folded. */
  events: number;
  /** Wall time of the replay in milliseconds. */
  elapsedMs: number;
  /** The read models as they stood at `until` (or now). */
  state: ReadModelsSummary;
}

const frozenClock = (ms: number): Clock => ({
  now: () => ms,
  setTimeout: () => {
    throw new Error("A replay starts no timer");
  },
  clearTimeout: () => {},
});

/**
 * Replays the log into fresh read models.
 *
 * The log is read in its gap-safe order with `scanAll` (large pages, one ahead of the
 * fold); only events whose `recorded_at` is at or before `until` (at millisecond
 * precision) are folded — filtered by the database, so an event that committed late with
 * an early `recorded_at` is still found. Each event goes through the machines' compiled
 * transition functions and the projections, exactly as at start-up.
 *
 * @throws {DOMException} `AbortError` when `signal` aborts.
 * @throws {UnknownEventTypeError} when the log holds an event this version cannot read.
 */
export async function replayLog(
  store: SqlEventStore,
  options: ReplayLogOptions = {},
): Promise<ReplayResult> {
  const nowMs = options.until?.getTime() ?? Date.now();
  const core = new EngineCore(store, frozenClock(nowMs), DEFAULT_ENGINE_CONFIG);
  const started = performance.now();
  let folded = 0;
  for await (
    const page of store.scanAll({
      until: options.until,
      pageSize: options.batchSize,
      signal: options.signal,
    })
  ) {
    core.applyFromLog(page);
    folded += page.length;
    options.onProgress?.(folded);
  }
  return {
    events: folded,
    elapsedMs: performance.now() - started,
    state: summarizeReadModels(core, nowMs, options.orgId),
  };
}
