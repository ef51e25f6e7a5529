/**
 * Catch-up-then-live subscription to the whole log, for projections and reactors.
 *
 * @module
 */

import type { ReadAllOptions, RecordedEvent } from "./event_store.ts";
import type { ListenOptions } from "./sql_client.ts";
import { Waiters } from "./_waiters.ts";

/** First delay, in milliseconds, of the quick re-reads while events are held back. */
const HELD_BACK_FIRST_RETRY_MS = 10;

/**
 * Positions of the last handled events kept, and of this process's appends not yet
 * handled, so that `waitFor` can answer without asking the store (see there).
 */
const RECENT_POSITIONS = 50_000;

/**
 * Milliseconds after which `waitFor` of a position this process appended asks the store
 * anyway (an append that committed before the subscription started is never handled).
 */
const LOCAL_WAIT_CHECK_MS = 1000;

/** Adds to an insertion-ordered set, forgetting its oldest entries beyond `limit`. */
function addBounded(set: Set<number>, value: number, limit: number): void {
  set.add(value);
  if (set.size > limit) set.delete(set.values().next().value!);
}

/** What a subscription needs from the store; `SqlEventStore` has all of it. */
export interface SubscriptionSource {
  /** Gap-safe read in global order (see `EventStore.readAll`). */
  readAll(options: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Compares two positions in `readAll` order (negative when `a` comes first). */
  compareLogOrder(a: number, b: number): Promise<number>;
  /** Whether committed events wait behind an older open transaction. */
  hasHeldBackEvents?(): Promise<boolean>;
  /**
   * `readAll` and `hasHeldBackEvents` in one snapshot and one round trip (see
   * `SqlEventStore.readAllPage`); used instead of the two when present.
   */
  readAllPage?(
    options: Pick<ReadAllOptions, "after" | "limit">,
  ): Promise<{ events: RecordedEvent[]; heldBack: boolean }>;
  /**
   * Local wake-up: called after each append of this process has committed, with its
   * last position and (optionally) its events.
   */
  onAppended?(
    listener: (position: number, events?: readonly RecordedEvent[]) => void,
  ): () => void;
  /** Cross-process wake-up (LISTEN); a hint only, notifications may be lost. */
  listenAppends?(
    onNotify: (position: number) => void,
    options?: ListenOptions,
  ): Promise<() => Promise<void>>;
}

/** Options of {@linkcode subscribeAll}. */
export interface SubscribeAllOptions {
  /** Checkpoint: deliver events after this global position (exclusive). @default 0 */
  after?: number;
  /**
   * Handles one batch, in log order. Calls never overlap; the checkpoint moves past the
   * batch only once the returned promise resolves. If it throws, the subscription stops
   * and `done` rejects with the error; the batch is not acknowledged.
   */
  onEvents: (events: RecordedEvent[]) => Promise<void> | void;
  /** Aborting it closes the subscription, like `close()`. */
  signal?: AbortSignal;
  /** Milliseconds between polls when nothing woke the subscription up. @default 500 */
  pollIntervalMs?: number;
  /** Maximum number of events per `onEvents` call. @default 1000 */
  batchSize?: number;
  /**
   * Receives read and LISTEN errors, which are then retried at the next poll. When not
   * set, such an error stops the subscription and `done` rejects with it.
   */
  onError?: (error: unknown) => void;
}

/** Options of the waiting methods of {@linkcode Subscription}. */
export interface WaitOptions {
  /** Stops waiting (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** A running subscription. */
export interface Subscription {
  /** Checkpoint: global position of the last event whose batch `onEvents` acknowledged. */
  readonly position: number;
  /** Resolves when the subscription was closed; rejects with the error that stopped it. */
  readonly done: Promise<void>;
  /**
   * Resolves once the event at `position` has been handled by `onEvents` (at once if it
   * already was; 0 resolves at once). It does not trigger a read: the event arrives with
   * the usual wake-ups (local append, NOTIFY, poll).
   * @throws {RangeError} When `position` is not a recorded event.
   * @throws {DOMException} `AbortError` when the subscription closes first, or the
   *   error that stopped it.
   */
  waitFor(position: number, options?: WaitOptions): Promise<void>;
  /**
   * Resolves once every event committed before this call has been handled: a read that
   * started after the call found no more events, and no events were held back by an older
   * open transaction when it started (if one stays open, this waits for it).
   * @throws {DOMException} `AbortError` when the subscription closes first, or the error
   *   that stopped it.
   */
  caughtUp(options?: WaitOptions): Promise<void>;
  /** Stops: waits for the running `onEvents` call, then stops listening and polling. */
  close(): Promise<void>;
}

/**
 * Delivers every event after a checkpoint, then follows the log live. It reads again at
 * once when this process appended (`onAppended`), when a `NOTIFY` arrives or when the LISTEN
 * connection is re-established (notifications sent meanwhile are lost), and otherwise
 * every `pollIntervalMs`. When such a wake-up finds the new events held back behind an
 * older open transaction (`hasHeldBackEvents`), it re-reads after 10, 20, 40… ms, up to
 * `pollIntervalMs`. Each event is delivered exactly once, in `readAll` order.
 *
 * @example Feed a projection and wait until it saw an append
 * ```ts
 * import { openEventStore, subscribeAll } from "./mod.ts";
 * const store = await openEventStore({ dataDir: "data" });
 * const seen: string[] = [];
 * const sub = subscribeAll(store, { onEvents: (events) => {
 *   for (const e of events) seen.push(e.type);
 * } });
 * const { events } = await store.append([{
 *   streamId: "job-1", expectedVersion: "any", events: [{ type: "job.queued", data: {} }],
 * }]);
 * await sub.waitFor(events[0].globalPosition);
 * await sub.close();
 * await store.close();
 * ```
 *
 * @param source The store (or anything with `readAll` and `compareLogOrder`).
 * @param options Checkpoint, handler, timing.
 * @returns The running subscription.
 * @throws {RangeError} When `after`, `pollIntervalMs` or `batchSize` is out of range.
 */
export function subscribeAll(
  source: SubscriptionSource,
  options: SubscribeAllOptions,
): Subscription {
  const { after = 0, onEvents, signal, pollIntervalMs = 500, batchSize = 1000, onError } = options;
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new RangeError(`after must be an integer >= 0, got ${after}`);
  }
  if (!(pollIntervalMs > 0 && Number.isFinite(pollIntervalMs))) {
    throw new RangeError(`pollIntervalMs must be a positive number, got ${pollIntervalMs}`);
  }
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be an integer >= 1, got ${batchSize}`);
  }

  let position = after;
  let stopped = false;
  let failure: unknown;
  let pollsStarted = 0;
  let woken = false;
  let endIdle: (() => void) | undefined;
  let listening: Promise<void> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  const positionWaiters = new Waiters<number>();
  /** Positions of the last events handled. */
  const handledRecently = new Set<number>();
  /** Positions this process appended (announced by `onAppended`) and not yet handled. */
  const appendedHere = new Set<number>();
  const headWaiters = new Waiters<number>();
  const closedError = () => new DOMException("The subscription was closed", "AbortError");

  const wake = () => {
    woken = true;
    endIdle?.();
  };
  const stop = (error?: unknown) => {
    if (error !== undefined && failure === undefined) failure = error;
    stopped = true;
    endIdle?.();
  };
  const onAbort = () => stop();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) stop();
  const offAppended = source.onAppended?.((_last, events) => {
    for (const e of events ?? []) {
      if (!handledRecently.has(e.globalPosition)) {
        addBounded(appendedHere, e.globalPosition, RECENT_POSITIONS);
      }
    }
    wake();
  });

  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopped || woken) return resolve();
      const timer = setTimeout(end, ms);
      function end() {
        clearTimeout(timer);
        endIdle = undefined;
        resolve();
      }
      endIdle = end;
    });

  const report = (error: unknown) => onError ? onError(error) : stop(error);

  const startListening = () => {
    if (!source.listenAppends || listening || stopped) return;
    listening = source.listenAppends(wake, { onListen: wake }).then(
      async (stopListening) => {
        if (stopped) await stopListening();
        else unlisten = stopListening;
      },
      (error) => {
        listening = undefined; // retried at the next poll
        if (!stopped) report(error);
      },
    );
  };

  /**
   * Reads and delivers one batch; `held` says whether committed events were held back by
   * an older open transaction when the read began (`heldBefore`, or the read's own answer
   * when the source reads both in one statement). Read errors are reported; handler
   * errors thrown.
   */
  const poll = async (
    pollNumber: number,
    heldBefore: boolean,
  ): Promise<{ state: "more" | "head" | "failed"; held: boolean }> => {
    let batch: RecordedEvent[];
    let held = heldBefore;
    try {
      if (source.readAllPage) {
        const page = await source.readAllPage({ after: position, limit: batchSize });
        batch = page.events;
        held = page.heldBack;
      } else {
        batch = await source.readAll({ after: position, limit: batchSize });
      }
    } catch (error) {
      report(error);
      return { state: "failed", held: false };
    }
    if (stopped) return { state: "failed", held: false };
    if (batch.length > 0) {
      await onEvents(batch);
      position = batch[batch.length - 1].globalPosition;
      const handled = new Set(batch.map((e) => e.globalPosition));
      for (const p of handled) {
        addBounded(handledRecently, p, RECENT_POSITIONS);
        appendedHere.delete(p);
      }
      positionWaiters.resolveWhere((target) => handled.has(target));
    }
    if (batch.length === batchSize) return { state: "more", held };
    if (!held) headWaiters.resolveWhere((needed) => needed <= pollNumber);
    return { state: "head", held };
  };

  const heldBack = async (): Promise<boolean> => {
    try {
      return await source.hasHeldBackEvents?.() ?? false;
    } catch (error) {
      report(error);
      return true; // unknown: do not claim to be caught up, re-read soon
    }
  };

  const run = async () => {
    // After a wake-up, events may be held back by an older open transaction, which sends
    // no NOTIFY when it ends: then re-read after 10, 20, 40… ms, up to the poll interval,
    // instead of waiting a whole interval. The check runs BEFORE the read: if nothing was
    // held back then, the read sees every event committed before the wake-up (checked
    // after, a transaction ending in between would leave its events unread).
    let retryMs = 0;
    try {
      while (!stopped) {
        startListening();
        const eager = woken || retryMs > 0;
        woken = false;
        const pollNumber = ++pollsStarted;
        // A source that reads both in one statement answers `held` with the page.
        const heldBefore = !source.readAllPage && (eager || headWaiters.size > 0) &&
          await heldBack();
        const { state, held } = await poll(pollNumber, heldBefore);
        if (state === "more") continue;
        retryMs = state === "head" && held
          ? Math.min(retryMs * 2 || HELD_BACK_FIRST_RETRY_MS, pollIntervalMs)
          : 0;
        await idle(retryMs || pollIntervalMs);
      }
    } catch (error) {
      stop(error);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      offAppended?.();
      await listening;
      await unlisten?.();
      positionWaiters.rejectAll(failure ?? closedError());
      headWaiters.rejectAll(failure ?? closedError());
    }
    if (failure !== undefined) throw failure;
  };

  const done = run();
  done.catch(() => {}); // handled here so an unobserved failure is not unhandled; see `done`

  return {
    get position() {
      return position;
    },
    done,
    waitFor(target, waitOptions) {
      if (!Number.isSafeInteger(target) || target < 0) {
        return Promise.reject(
          new RangeError(`position must be an integer >= 0, got ${target}`),
        );
      }
      if (target === 0) return Promise.resolve();
      if (stopped) return Promise.reject(failure ?? closedError());
      if (handledRecently.has(target)) return Promise.resolve();
      const { promise, waiter } = positionWaiters.add(target, waitOptions?.signal);
      // Handled before this call? (If it is handled while this runs, `poll` resolves it.)
      const check = () =>
        source.compareLogOrder(target, position).then(
          (order) => order <= 0 && waiter.resolve(),
          (error) => waiter.reject(error),
        );
      if (appendedHere.has(target)) {
        // Appended here and not handled yet: recorded, and `poll` resolves it. Asking the
        // store for each one (every submission waits for its events) cost a query per
        // job; ask only if it takes long.
        const timer = setTimeout(check, LOCAL_WAIT_CHECK_MS);
        const clear = () => clearTimeout(timer);
        promise.then(clear, clear);
      } else {
        check();
      }
      return promise;
    },
    caughtUp(waitOptions) {
      if (stopped) return Promise.reject(failure ?? closedError());
      const { promise } = headWaiters.add(pollsStarted + 1, waitOptions?.signal);
      wake(); // the next read is the one that counts: start it now
      return promise;
    },
    async close() {
      stop();
      await done.catch(() => {});
    },
  };
}
