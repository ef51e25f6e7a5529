/**
 * Catch-up-then-live subscription to the whole log, for projections and reactors.
 *
 * @module
 */

import type { ReadAllOptions, RecordedEvent } from "./event_store.ts";
import type { ListenOptions } from "./sql_client.ts";

/** What a subscription needs from the store; `SqlEventStore` has all of it. */
export interface SubscriptionSource {
  /** Gap-safe read in global order (see `EventStore.readAll`). */
  readAll(options: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Compares two positions in `readAll` order (negative when `a` comes first). */
  compareLogOrder(a: number, b: number): Promise<number>;
  /** Local wake-up: called after each append of this process has committed. */
  onAppended?(listener: (position: number) => void): () => void;
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
   * Resolves once a read that started after this call found no more events, i.e. every
   * event readable (gap-safe) at the time of the call has been handled.
   * @throws {DOMException} `AbortError` when the subscription closes first, or the error
   *   that stopped it.
   */
  caughtUp(options?: WaitOptions): Promise<void>;
  /** Stops: waits for the running `onEvents` call, then stops listening and polling. */
  close(): Promise<void>;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Delivers every event after a checkpoint, then follows the log live. It reads again at
 * once when this process appended (`onAppended`), when a `NOTIFY` arrives or when the LISTEN
 * connection is re-established (notifications sent meanwhile are lost), and otherwise
 * every `pollIntervalMs`. Each event is delivered exactly once, in `readAll` order.
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
  let wakeRequested = false;
  let endIdle: (() => void) | undefined;
  let listening: Promise<void> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  const positionWaiters = new Set<Waiter & { position: number }>();
  const headWaiters = new Set<Waiter & { poll: number }>();

  const wake = () => {
    wakeRequested = true;
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
  const offAppended = source.onAppended?.(wake);

  const idle = () =>
    new Promise<void>((resolve) => {
      if (stopped || wakeRequested) return resolve();
      const timer = setTimeout(end, pollIntervalMs);
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

  const run = async () => {
    try {
      while (!stopped) {
        startListening();
        wakeRequested = false;
        const poll = ++pollsStarted;
        let batch: RecordedEvent[];
        try {
          batch = await source.readAll({ after: position, limit: batchSize });
        } catch (error) {
          report(error);
          await idle();
          continue;
        }
        if (stopped) break;
        if (batch.length > 0) {
          await onEvents(batch);
          position = batch[batch.length - 1].globalPosition;
          if (positionWaiters.size > 0) {
            const handled = new Set(batch.map((e) => e.globalPosition));
            for (const w of positionWaiters) if (handled.has(w.position)) w.resolve();
          }
        }
        if (batch.length < batchSize) {
          for (const w of headWaiters) if (w.poll <= poll) w.resolve();
        }
        if (batch.length < batchSize) await idle();
      }
    } catch (error) {
      stop(error);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      offAppended?.();
      await listening;
      await unlisten?.();
      const reason = failure ?? new DOMException("The subscription was closed", "AbortError");
      for (const w of [...positionWaiters, ...headWaiters]) w.reject(reason);
    }
    if (failure !== undefined) throw failure;
  };

  const addWaiter = <T extends object>(
    set: Set<Waiter & T>,
    fields: T,
    waitSignal: AbortSignal | undefined,
  ): { promise: Promise<void>; waiter: Waiter } => {
    let waiter!: Waiter & T;
    const promise = new Promise<void>((resolve, reject) => {
      const onWaitAbort = () => waiter.reject(waitSignal?.reason);
      const settle = () => {
        set.delete(waiter);
        waitSignal?.removeEventListener("abort", onWaitAbort);
      };
      waiter = {
        ...fields,
        resolve: () => (settle(), resolve()),
        reject: (error) => (settle(), reject(error)),
      };
      if (stopped) {
        return reject(failure ?? new DOMException("The subscription was closed", "AbortError"));
      }
      if (waitSignal?.aborted) return reject(waitSignal.reason);
      set.add(waiter);
      waitSignal?.addEventListener("abort", onWaitAbort, { once: true });
    });
    return { promise, waiter };
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
      const { promise, waiter } = addWaiter(
        positionWaiters,
        { position: target },
        waitOptions?.signal,
      );
      if (stopped) return promise;
      // Handled before this call? (If it is handled while this runs, the batch check of
      // `run` resolves the waiter.)
      source.compareLogOrder(target, position).then(
        (order) => order <= 0 && waiter.resolve(),
        (error) => waiter.reject(error),
      );
      return promise;
    },
    caughtUp(waitOptions) {
      const { promise } = addWaiter(headWaiters, { poll: pollsStarted + 1 }, waitOptions?.signal);
      wake(); // the next read is the one that counts: start it now
      return promise;
    },
    async close() {
      stop();
      await done.catch(() => {});
    },
  };
}
