/**
 * Follows the log from the test process (the gap-safe subscription, woken by NOTIFY) and
 * resolves waits on job outcomes without polling the API or sleeping.
 *
 * @module
 */
import { type RecordedEvent, type SqlEventStore, subscribeAll } from "../../events/mod.ts";
import { TERMINAL_JOB_EVENTS } from "../../audit/mod.ts";

/** What the log said so far. */
export interface LogWatch {
  /** Jobs that have a terminal event, by id. */
  readonly ended: ReadonlySet<string>;
  /** Number of events seen. */
  readonly events: number;
  /** `job.queued` events that ended a lease, by `reason` (`robot_lost: …`, `robot_restarted`…). */
  readonly requeues: ReadonlyMap<string, number>;
  /** `leader.elected` events (cluster mode), in log order. */
  readonly leaders: readonly RecordedEvent[];
  /** Resolves when `predicate()` holds, checked after each batch of events. */
  until(predicate: () => boolean, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Starts following the log of `store` from its beginning. */
export function watchLog(store: SqlEventStore): LogWatch {
  const ended = new Set<string>();
  const requeues = new Map<string, number>();
  let events = 0;
  const leaders: RecordedEvent[] = [];
  const waiters = new Set<() => void>();
  const sub = subscribeAll(store, {
    pollIntervalMs: 200,
    onError: () => {}, // a read that fails is retried at the next poll
    onEvents: (batch: RecordedEvent[]) => {
      events += batch.length;
      for (const e of batch) {
        if (TERMINAL_JOB_EVENTS.has(e.type)) ended.add(e.streamId.slice(4));
        if (e.type === "leader.elected") leaders.push(e);
        if (e.type === "job.queued" && e.data.reason !== "submitted") {
          const reason = String(e.data.reason);
          requeues.set(reason, (requeues.get(reason) ?? 0) + 1);
        }
      }
      for (const w of [...waiters]) w();
    },
  });
  return {
    ended,
    requeues,
    leaders,
    get events() {
      return events;
    },
    until(predicate, signal = AbortSignal.timeout(120_000)) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate()) {
            waiters.delete(check);
            signal.removeEventListener("abort", abort);
            resolve();
          }
        };
        const abort = () => {
          waiters.delete(check);
          reject(new Error(`condition not reached after ${events} events`));
        };
        signal.addEventListener("abort", abort, { once: true });
        waiters.add(check);
        check();
      });
    },
    close: () => sub.close(),
  };
}
