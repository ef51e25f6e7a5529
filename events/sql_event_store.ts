/**
 * The event store, written once over {@linkcode SqlClient} (PGlite or postgres.js).
 *
 * @module
 */

import type {
  AppendOptions,
  AppendResult,
  EventStore,
  ReadAllOptions,
  RecordedEvent,
  StreamAppend,
} from "./event_store.ts";
import type { ListenOptions, SqlClient, SqlTx } from "./sql_client.ts";
import { DEFAULT_MAX_EVENT_BYTES, validateAppend } from "./_validate_append.ts";
import { COLUMNS, type EventRecordRow, toRecorded } from "./_event_rows.ts";
import { appendInTx, EVENTS_CHANNEL } from "./_append_in_tx.ts";
import {
  appendFromKnownHeads,
  HeadCache,
  isUniqueViolation,
  knownHeads,
} from "./_append_known_heads.ts";
import { sealInTx } from "./_seal_in_tx.ts";
import { scanLog, type ScanLogOptions } from "./_scan_log.ts";
import { createSnapshotStore, type SnapshotStore } from "./snapshot_store.ts";
import type { ChainedEvent, ReadChainOptions, Seal } from "./hash_chain.ts";

export { EVENTS_CHANNEL };

/** Streams whose head (version, hash) a store remembers for its one-statement appends. */
const HEAD_CACHE_STREAMS = 100_000;

/** Full-transaction attempts of an append that meets a concurrent writer's unique key. */
const UNIQUE_RETRIES = 3;

/** Rows whose transaction ended: no running transaction can add rows before them. */
/**
 * The gap-safe condition of a page of `readAll` order after `after` (exclusive) and its
 * parameters (`$1` is `limit`, `$2` is `after` when > 0).
 * @throws {RangeError} When `after` or `limit` is out of range.
 */
function gapSafeWhere(after: number, limit: number): { params: unknown[]; where: string } {
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new RangeError(`after must be an integer >= 0, got ${after}`);
  }
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`limit must be an integer >= 1, got ${limit}`);
  }
  const params: unknown[] = [limit];
  let where = GAP_SAFE;
  if (after > 0) {
    params.push(after);
    where += ` and (transaction_id, global_position) >
      ((select transaction_id from events where global_position = $2::int8), $2::int8)`;
  }
  return { params, where };
}

const GAP_SAFE = "transaction_id < pg_snapshot_xmin(pg_current_snapshot())";

/** The SQL event store: {@linkcode EventStore} plus what subscriptions need. */
export interface SqlEventStore extends EventStore {
  /**
   * Reads the log from `after` to its current end in `readAll` order, in large pages
   * fetched one ahead (what replays and start-up use): the same events as repeated
   * `readAll` calls, several times faster.
   *
   * @throws {RangeError} When `after` is not 0 or a recorded position, or `pageSize` < 1.
   */
  scanAll(options?: ScanLogOptions): AsyncGenerator<RecordedEvent[], void, void>;
  /**
   * Snapshots of folded streams (table `actor_snapshots`): a cache beside the log that
   * readers of long streams may use; never a source of truth.
   */
  readonly snapshots: SnapshotStore;
  /**
   * Global position of the last event in `readAll` order that readers can see now
   * (gap-safe), or 0 when there is none. Start a live-only subscription from it.
   */
  currentPosition(): Promise<number>;
  /**
   * Whether some committed events are not readable yet because an older transaction is
   * still open (their `transaction_id` is not below the snapshot's xmin). A lag signal:
   * when true, a read soon will return more.
   */
  hasHeldBackEvents(): Promise<boolean>;
  /**
   * {@linkcode EventStore.readAll} and {@linkcode SqlEventStore.hasHeldBackEvents} in one
   * statement, so in one snapshot and one round trip: a page of events in the gap-safe
   * order, and whether committed events were left out of it because an older transaction
   * is still open. With `heldBack` false and fewer than `limit` events, the reader has seen
   * every event committed before the statement began.
   *
   * @throws {RangeError} As `readAll`.
   */
  readAllPage(
    options?: Pick<ReadAllOptions, "after" | "limit">,
  ): Promise<{ events: RecordedEvent[]; heldBack: boolean }>;
  /**
   * Compares two global positions in `readAll` order, which is
   * `(transaction_id, global_position)`, not the positions' numeric order.
   *
   * @returns A negative number when `a` comes first, 0 when equal, positive otherwise.
   *   Position 0 is the start of the log and comes before every event.
   * @throws {RangeError} When a non-zero position is not a recorded event.
   */
  compareLogOrder(a: number, b: number): Promise<number>;
  /**
   * Registers a listener called after each append of THIS store object has committed,
   * with the append's last global position. Listeners must not throw.
   *
   * @returns A function that removes the listener.
   */
  onAppended(
    listener: (position: number, events: readonly RecordedEvent[]) => void,
  ): () => void;
  /**
   * Registers an observer told how long each `append` of THIS store object took (from the
   * call to the commit or the failure, validation and retries of a transaction included),
   * whether it wrote, and how many events it carried: a hook for latency metrics that keeps
   * the store free of any metrics library. Observers are called synchronously and must not
   * throw (an observer that throws is logged and ignored).
   *
   * @returns A function that removes the observer.
   */
  observeAppends(observer: (observation: AppendObservation) => void): () => void;
  /**
   * True when this store object is the only writer of its database (PGlite: one process
   * per data directory, one transaction at a time). Its appends then commit in log order,
   * and {@linkcode onAppended} listeners see every event, in order.
   */
  readonly exclusive: boolean;
  /**
   * Listens to the `NOTIFY` of appends from every process (channel
   * {@linkcode EVENTS_CHANNEL}). A wake-up hint only: notifications sent while the LISTEN
   * connection is down are lost. Absent when the client cannot listen.
   *
   * @returns A function that stops listening.
   */
  listenAppends?(
    onNotify: (position: number) => void,
    options?: ListenOptions,
  ): Promise<() => Promise<void>>;
  /**
   * Seals the log: appends to stream `audit-seals` an `audit.sealed` event recording a
   * hash over the head (version and chain hash) of every stream, the numbers of streams
   * and events, and the heads that changed since the previous seal, so that `verifyLog`
   * catches a deleted tail. It covers every event whose transaction had ended when the
   * seal was taken (`transaction_id` below the seal's `horizon`). When nothing but the
   * seals changed since the last seal, writes nothing and returns that seal.
   *
   * Cost: the events committed since the previous seal (an index range scan) plus one row
   * per stream from table `sealed_heads`, the heads of the previous seal, which the seal
   * keeps up to date (checked against that seal, rebuilt by one aggregate over the log when
   * it does not match). Call it periodically (the engine does) and on demand.
   *
   * @param options `guard` runs first in the seal's transaction, as in `append` (a
   *   leader's fencing check: a former leader's periodic seal is refused).
   * @returns The seal; write its `hash` down outside the database to anchor the log.
   * @throws What `options.guard` threw; nothing is written.
   */
  seal(options?: Pick<AppendOptions, "guard">): Promise<Seal>;
  /**
   * Reads events with their stored chain hash and transaction id, in
   * `(stream_id, stream_version)` order: what an audit of the hash chains reads.
   *
   * @throws {RangeError} When `limit` is not an integer >= 1.
   */
  readChain(options?: ReadChainOptions): Promise<ChainedEvent[]>;
}

/** What {@linkcode SqlEventStore.observeAppends} observers are told about one append. */
export interface AppendObservation {
  /** Wall-clock duration of the append, in milliseconds (`performance.now()` differences). */
  durationMs: number;
  /** Events the append carried (given), whether written or not. */
  events: number;
  /**
   * `written` when it committed new events, `replayed` when every event id was already
   * recorded (idempotent replay), `failed` when it threw (version conflict, bad input,
   * database error).
   */
  outcome: "written" | "replayed" | "failed";
}

/** Options of {@linkcode createSqlEventStore}. */
export interface SqlEventStoreOptions {
  /** Generates ids of events given without `eventId`. @default crypto.randomUUID */
  newId?: () => string;
  /**
   * Whether each append sends `NOTIFY events, '<last position>'` in its transaction, to
   * wake subscribers of other processes at once. Postgres takes a database-wide lock at the
   * commit of a notifying transaction; turn this off to trade wake-up latency (subscribers
   * then poll) for commit throughput.
   * @default true
   */
  notify?: boolean;
  /**
   * Limit of one event's `data` plus `metadata`, in bytes of UTF-8 JSON; a larger event
   * is refused with a `TypeError` before anything is written.
   * @default 1048576 (1 MiB)
   */
  maxEventBytes?: number;
}

/**
 * Builds the event store over a SQL client whose `events` table exists (see
 * `migrateEventsSchema`). The store owns the client: `close()` closes it.
 *
 * Writers lock only the streams they write (advisory locks), never the whole log; on an
 * exclusive client (PGlite), which runs one transaction at a time, they need no lock.
 *
 * @example
 * ```ts
 * import { createPgliteClient, createSqlEventStore, migrateEventsSchema } from "./mod.ts";
 * const client = await createPgliteClient({ dataDir: "memory://" });
 * await migrateEventsSchema(client);
 * const store = createSqlEventStore(client);
 * await store.append([{
 *   streamId: "job-1",
 *   expectedVersion: 0,
 *   events: [{ type: "job.queued", data: { priority: 1 } }],
 * }]);
 * await store.close();
 * ```
 *
 * @param client The connection; its `events` table must exist.
 * @param options Injected id generator.
 * @returns The store.
 */
export function createSqlEventStore(
  client: SqlClient,
  options: SqlEventStoreOptions = {},
): SqlEventStore {
  const newId = options.newId ?? (() => crypto.randomUUID());
  const notify = options.notify ?? true;
  const lock = !client.exclusive;
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  if (!Number.isSafeInteger(maxEventBytes) || maxEventBytes < 1) {
    throw new RangeError(`maxEventBytes must be an integer >= 1, got ${maxEventBytes}`);
  }
  const appendedListeners = new Set<
    (position: number, events: readonly RecordedEvent[]) => void
  >();
  const appendObservers = new Set<(observation: AppendObservation) => void>();
  const observe = (observation: AppendObservation) => {
    for (const observer of appendObservers) {
      try {
        observer(observation);
      } catch (error) {
        console.error("append observer failed:", error);
      }
    }
  };
  const announce = (result: AppendResult) => {
    const events = [...result.events].sort((a, b) => a.globalPosition - b.globalPosition);
    const last = events[events.length - 1]?.globalPosition ?? 0;
    for (const listener of appendedListeners) queueMicrotask(() => listener(last, events));
  };

  const heads = new HeadCache(HEAD_CACHE_STREAMS);
  const remember = (result: AppendResult, hashes: Record<string, string> | undefined) => {
    if (!hashes) return;
    for (const [streamId, version] of Object.entries(result.versions)) {
      const hash = hashes[streamId];
      if (hash !== undefined) heads.set(streamId, { version, hash });
    }
  };

  /** One append, by the fast path or the full transaction; `written` false for a replay. */
  async function appendOnce(
    writes: StreamAppend[],
    options: AppendOptions,
  ): Promise<{ result: AppendResult; written: boolean }> {
    const rows = validateAppend(writes, { newId, maxEventBytes });
    const guard = options.guard;
    // A guarded append (a leader's fenced write) runs its guard in the append's transaction:
    // never the fast path.
    const known = !guard && knownHeads(writes, rows, heads);
    if (known) {
      const fast = await appendFromKnownHeads(client, writes, rows, known, { notify, lock });
      if (fast) {
        remember(fast.result, fast.heads);
        announce(fast.result);
        return { result: fast.result, written: true };
      }
    }
    for (let attempt = 1;; attempt++) {
      try {
        const outcome = await client.transaction(async (tx) => {
          if (guard) await guard(tx);
          return await appendInTx(tx, writes, rows, { notify, lock });
        });
        if (outcome.written) {
          remember(outcome.result, outcome.heads);
          announce(outcome.result);
        }
        return { result: outcome.result, written: outcome.written };
      } catch (error) {
        if (!isUniqueViolation(error) || attempt >= UNIQUE_RETRIES) throw error;
      }
    }
  }

  const store: SqlEventStore = {
    exclusive: client.exclusive === true,
    snapshots: createSnapshotStore(client),
    /**
     * One statement when every stream's head is known (new streams, or heads this store
     * wrote last: see `_append_known_heads.ts`); else, or when that meets a conflict or a
     * recorded event id, the full
     * transaction of `appendInTx`, which reports the conflict or replays. That transaction
     * is tried again (at most {@linkcode UNIQUE_RETRIES} times) on a unique violation (an
     * event id recorded by a concurrent retry of the same append).
     */
    async append(writes: StreamAppend[], options: AppendOptions = {}): Promise<AppendResult> {
      const started = performance.now();
      const events = Array.isArray(writes)
        ? writes.reduce((n, w) => n + (Array.isArray(w?.events) ? w.events.length : 0), 0)
        : 0;
      let outcome: { result: AppendResult; written: boolean };
      try {
        outcome = await appendOnce(writes, options);
      } catch (error) {
        if (appendObservers.size) {
          observe({ durationMs: performance.now() - started, events, outcome: "failed" });
        }
        throw error;
      }
      if (appendObservers.size) {
        observe({
          durationMs: performance.now() - started,
          events,
          outcome: outcome.written ? "written" : "replayed",
        });
      }
      return outcome.result;
    },

    async seal(options = {}) {
      const { seal, result } = await client.transaction(async (tx) => {
        if (options.guard) await options.guard(tx);
        return await sealInTx(tx, { newId, maxEventBytes, notify, lock });
      });
      if (result) announce(result);
      return seal;
    },

    async readChain(opts: ReadChainOptions = {}) {
      const { after, streamId, limit = 1000, signal } = opts;
      signal?.throwIfAborted();
      if (!Number.isSafeInteger(limit) || limit < 1) {
        throw new RangeError(`limit must be an integer >= 1, got ${limit}`);
      }
      const params: unknown[] = [limit];
      const where: string[] = [];
      if (after !== undefined) {
        params.push(after.streamId, after.streamVersion);
        where.push(`(stream_id, stream_version) > ($2, $3::int8)`);
      }
      if (streamId !== undefined) {
        params.push(streamId);
        where.push(`stream_id = $${params.length}`);
      }
      const rows = await client.query<
        EventRecordRow & { hash: string | null; transaction_id: string }
      >(
        `select ${COLUMNS}, encode(hash, 'hex') as hash, transaction_id::text as transaction_id
         from events ${where.length > 0 ? `where ${where.join(" and ")}` : ""}
         order by stream_id, stream_version limit $1::int8`,
        params,
      );
      signal?.throwIfAborted();
      return rows.map((row) => ({
        ...toRecorded(row),
        hash: row.hash,
        transactionId: row.transaction_id,
      }));
    },

    async readStream(streamId, { fromVersion = 1 } = {}) {
      if (typeof streamId !== "string") {
        throw new TypeError(`streamId must be a string, got ${typeof streamId}`);
      }
      if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) {
        throw new RangeError(`fromVersion must be an integer >= 1, got ${fromVersion}`);
      }
      const rows = await client.query<EventRecordRow>(
        `select ${COLUMNS} from events where stream_id = $1 and stream_version >= $2::int8
         order by stream_version`,
        [streamId, fromVersion],
      );
      return rows.map(toRecorded);
    },

    /**
     * Reads in the gap-safe global order. Ordering by `global_position` alone would lose
     * events: sequence values are taken at insert but transactions commit in another
     * order, so a reader that saw position 101 may later find 100 appear, after its
     * checkpoint moved past it (Marten #1629, Emmett PR #336, Eventuous #222). Only rows of
     * transactions that have ended (`transaction_id < xmin` of the current snapshot) are
     * returned, in `(transaction_id, global_position)` order: any transaction still
     * running, or starting later, has an id >= xmin and so sorts after every row returned.
     * The `after` position is turned into its `(transaction_id, global_position)` pair.
     * The cost: one long-open transaction anywhere holds every reader back.
     */
    async readAll(opts: ReadAllOptions = {}) {
      const { after = 0, limit = 1000, streamId, signal } = opts;
      signal?.throwIfAborted();
      const { params, where: gapSafe } = gapSafeWhere(after, limit);
      let where = gapSafe;
      if (streamId !== undefined) {
        params.push(streamId);
        where += ` and stream_id = $${params.length}`;
      }
      const rows = await client.query<EventRecordRow>(
        `select ${COLUMNS} from events where ${where}
         order by transaction_id, global_position limit $1::int8`,
        params,
      );
      if (rows.length === 0 && after > 0) await assertRecorded(client, after, "after");
      signal?.throwIfAborted();
      return rows.map(toRecorded);
    },

    scanAll(opts?: ScanLogOptions) {
      return scanLog(client, opts);
    },

    async currentPosition() {
      const rows = await client.query<{ global_position: number }>(
        `select global_position from events where ${GAP_SAFE}
         order by transaction_id desc, global_position desc limit 1`,
      );
      return rows[0]?.global_position ?? 0;
    },

    async readAllPage(opts = {}) {
      const { after = 0, limit = 1000 } = opts;
      const { params, where } = gapSafeWhere(after, limit);
      // One snapshot for both: the page, and whether rows of ended transactions wait
      // behind an open one. Empty page: one row of nulls carrying held_back.
      const rows = await client.query<EventRecordRow & { held_back: boolean; tx: string }>(
        `select h.held_back, p.* from
           (select exists (
              select 1 from events where transaction_id >= pg_snapshot_xmin(pg_current_snapshot())
            ) as held_back) as h
           left join lateral (
             select ${COLUMNS}, transaction_id as tx from events where ${where}
             order by transaction_id, global_position limit $1::int8
           ) as p on true
         order by p.tx, p.global_position`,
        params,
      );
      const heldBack = rows.length > 0 && rows[0].held_back === true;
      const page = rows.filter((row) => row.global_position !== null);
      if (page.length === 0 && after > 0) await assertRecorded(client, after, "after");
      return { events: page.map(toRecorded), heldBack };
    },

    async hasHeldBackEvents() {
      const rows = await client.query<{ held_back: boolean }>(
        `select exists (
           select 1 from events where transaction_id >= pg_snapshot_xmin(pg_current_snapshot())
         ) as held_back`,
      );
      return rows[0].held_back;
    },

    async compareLogOrder(a, b) {
      if (a === b) return 0;
      if (a === 0 || b === 0) return a === 0 ? -1 : 1;
      const rows = await client.query<{ a_first: boolean }>(
        `select (a.transaction_id, a.global_position) < (b.transaction_id, b.global_position)
           as a_first
         from events a, events b where a.global_position = $1::int8 and b.global_position = $2::int8`,
        [a, b],
      );
      if (rows.length === 0) {
        await assertRecorded(client, a, "a");
        await assertRecorded(client, b, "b");
      }
      return rows[0].a_first ? -1 : 1;
    },

    onAppended(listener) {
      appendedListeners.add(listener);
      return () => appendedListeners.delete(listener);
    },

    observeAppends(observer) {
      appendObservers.add(observer);
      return () => appendObservers.delete(observer);
    },

    async close() {
      appendedListeners.clear();
      appendObservers.clear();
      await client.close();
    },
  };
  const listen = client.listen?.bind(client);
  if (listen) {
    store.listenAppends = (onNotify, listenOptions) =>
      listen(EVENTS_CHANNEL, (payload) => onNotify(Number(payload)), listenOptions);
  }
  return store;
}

async function assertRecorded(client: SqlTx, position: number, name: string): Promise<void> {
  const rows = await client.query("select 1 from events where global_position = $1::int8", [
    position,
  ]);
  if (rows.length === 0) {
    throw new RangeError(
      `${name} must be the global position of a recorded event, got ${position}`,
    );
  }
}
