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
  /** Events read per query. @default 10_000 */
  batchSize?: number;
  /** Called after each batch with the number of events folded so far. */
  onProgress?: (folded: number) => void;
  signal?: AbortSignal;
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
 * The log is read in its gap-safe order; events are folded while their `recorded_at` is at
 * or before `until`. Because appends commit in transaction order, an event recorded
 * before `until` never follows one recorded after it by more than the length of one
 * transaction, so the replay reads on until a whole batch lies past `until`.
 *
 * @throws {DOMException} `AbortError` when `signal` aborts.
 */
export async function replayLog(
  store: SqlEventStore,
  options: ReplayLogOptions = {},
): Promise<ReplayResult> {
  const until = options.until?.getTime() ?? Infinity;
  const nowMs = Number.isFinite(until) ? until : Date.now();
  const core = new EngineCore(store, frozenClock(nowMs), DEFAULT_ENGINE_CONFIG);
  const started = performance.now();
  let after = 0;
  let folded = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const batch = await store.readAll({ after, limit: options.batchSize ?? 10_000 });
    if (batch.length === 0) break;
    after = batch[batch.length - 1].globalPosition;
    const inRange = batch.filter((e) => e.recordedAt.getTime() <= until);
    if (inRange.length) core.applyFromLog(inRange);
    folded += inRange.length;
    options.onProgress?.(folded);
    if (inRange.length === 0) break;
  }
  return {
    events: folded,
    elapsedMs: performance.now() - started,
    state: summarizeReadModels(core, nowMs),
  };
}
