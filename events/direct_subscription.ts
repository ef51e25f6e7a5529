/**
 * A subscription for an exclusive store (PGlite): the events of each append are handed
 * over as they commit, instead of being read back from the database.
 *
 * Sound because an exclusive store is the only writer of its database and runs one
 * transaction at a time: appends commit in log order, so the events announced after each
 * commit, taken in order, are exactly the log. Catch-up from the checkpoint still reads.
 *
 * @module
 */
import type { RecordedEvent } from "./event_store.ts";
import type { SqlEventStore } from "./sql_event_store.ts";
import type { SubscribeAllOptions, Subscription, WaitOptions } from "./subscription.ts";

/**
 * Catch-up from `after` by reading, then live from the store's own appends.
 * @throws {TypeError} when the store is not exclusive.
 */
export function subscribeDirect(
  store: SqlEventStore,
  options: Pick<SubscribeAllOptions, "after" | "onEvents" | "batchSize">,
): Subscription {
  if (!store.exclusive) throw new TypeError("subscribeDirect needs an exclusive store");
  let position = options.after ?? 0;
  let closed = false;
  let chain: Promise<void> = Promise.resolve();
  let fail!: (error: unknown) => void;
  let finish!: () => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  done.catch(() => {});
  const waiters = new Set<() => void>();
  const handle = async (events: readonly RecordedEvent[]) => {
    const fresh = events.filter((e) => e.globalPosition > position);
    if (fresh.length === 0 || closed) return;
    await options.onEvents(fresh);
    position = fresh[fresh.length - 1].globalPosition;
    for (const w of waiters) w();
  };
  const enqueue = (work: () => Promise<void>) => {
    chain = chain.then(() => (closed ? undefined : work())).catch((error) => {
      closed = true;
      off();
      fail(error);
    });
    return chain;
  };
  // Listen first, then catch up: appends during the catch-up are filtered by position.
  const off = store.onAppended((_last, events) => void enqueue(() => handle(events)));
  enqueue(async () => {
    for (;;) {
      const batch = await store.readAll({ after: position, limit: options.batchSize ?? 1000 });
      if (batch.length === 0) return;
      await handle(batch);
    }
  });
  const until = (test: () => boolean, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!test()) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      signal?.addEventListener("abort", () => {
        waiters.delete(check);
        reject(signal.reason);
      });
      done.catch(reject);
      check();
    });
  return {
    get position() {
      return position;
    },
    done,
    waitFor: (target: number, opts?: WaitOptions) => until(() => position >= target, opts?.signal),
    caughtUp: async (opts?: WaitOptions) => {
      await enqueue(async () => {});
      const latest = await store.currentPosition();
      await until(() => position >= latest, opts?.signal);
    },
    close: async () => {
      closed = true;
      off();
      await chain;
      finish();
    },
  };
}
