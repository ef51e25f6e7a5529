/**
 * The fast path of `append()`: when the heads are known, fewer round trips.
 *
 * The transaction of `appendInTx` waits for four answers in turn (BEGIN; locks, replay
 * lookup and heads; INSERT; COMMIT), and the engine's appends of one set of streams are
 * written one after the other, so each round trip delays the commands queued behind it.
 * When the writer already knows the head (version and chain hash) of every stream it
 * appends to — a new stream (version 0), or one whose head this store wrote last — the new
 * rows and their hashes are computed before the database is asked, and the statements are
 * sent together (`SqlClient.pipeline`): BEGIN, then the streams' advisory locks (the same
 * as `appendInTx` takes, so the two paths exclude each other per stream) and one statement
 * that checks the heads and inserts, then COMMIT: three round trips. On an exclusive client
 * (PGlite) the statement runs alone: it is its own transaction and nothing runs beside it.
 *
 * The statement starts after the locks are held, so its snapshot sees every earlier
 * writer of those streams committed, and it inserts nothing (taking no sequence value)
 * when a head differs from the one expected (another writer got there first, the cached
 * hash is not the head's) or when one of the event ids is recorded (an idempotent retry):
 * the caller then runs the full transaction, which reports the conflict exactly, or
 * replays. The order of the log is that of `appendInTx`: the locks are taken before the
 * transaction id is assigned (at the first inserted row).
 *
 * @module
 */

import type { AppendResult, StreamAppend } from "./event_store.ts";
import type { SqlClient } from "./sql_client.ts";
import type { EventRow } from "./_validate_append.ts";
import { COLUMNS, type EventRecordRow, inOrder } from "./_event_rows.ts";
import { GENESIS_HASH } from "./hash_chain.ts";
import {
  chainRows,
  EVENTS_CHANNEL,
  INSERT_CHUNK,
  INSERT_ROWS,
  LOCK_STREAMS,
} from "./_append_in_tx.ts";

/** A stream's last event as this store last saw it. */
export interface KnownHead {
  /** Version of the stream's last event (0: no event). */
  version: number;
  /** Chain hash of that event, lower case hex ({@linkcode GENESIS_HASH} for version 0). */
  hash: string;
}

/**
 * Heads of the streams this store wrote or read last, most recent last, bounded (the
 * oldest are forgotten: a forgotten head only sends its next append down the full path).
 */
export class HeadCache {
  readonly #heads = new Map<string, KnownHead>();
  readonly #capacity: number;

  /** @param capacity Most streams remembered. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** The head of a stream, if known. */
  get(streamId: string): KnownHead | undefined {
    return this.#heads.get(streamId);
  }

  /** Records a stream's head (moves it to the most recent end). */
  set(streamId: string, head: KnownHead): void {
    this.#heads.delete(streamId);
    this.#heads.set(streamId, head);
    if (this.#heads.size > this.#capacity) {
      this.#heads.delete(this.#heads.keys().next().value!);
    }
  }

  /** Forgets a stream's head. */
  delete(streamId: string): void {
    this.#heads.delete(streamId);
  }
}

/** Appends the statement checks against: every stream's expected head, when all are known. */
export function knownHeads(
  writes: StreamAppend[],
  rows: EventRow[],
  cache: HeadCache,
): Map<string, KnownHead> | undefined {
  if (rows.length > INSERT_CHUNK) return undefined;
  const heads = new Map<string, KnownHead>();
  for (const { streamId, expectedVersion } of writes) {
    if (expectedVersion === "any") return undefined;
    if (expectedVersion === 0) {
      heads.set(streamId, { version: 0, hash: GENESIS_HASH });
      continue;
    }
    const known = cache.get(streamId);
    if (known?.version !== expectedVersion) return undefined;
    heads.set(streamId, known);
  }
  return heads;
}

/**
 * The statement: `$1`–`$7` the rows (as `INSERT_ROWS`), `$8`–`$10` the expected heads
 * (stream, version, hash in hex; version 0 means no event), `$11` the NOTIFY channel or
 * null. Returns the inserted rows, or none when a head differs or an event id is recorded.
 */
const APPEND_CHECKED = `with expected as (
    select * from unnest($8::text[], $9::int8[], $10::text[]) as x(stream_id, version, hash)
  ),
  differs as (
    select 1 from expected x
    left join lateral (
      select e.stream_version, e.hash from events e where e.stream_id = x.stream_id
      order by e.stream_version desc limit 1
    ) as h on true
    where coalesce(h.stream_version, 0) <> x.version
      or (x.version > 0 and h.hash <> decode(x.hash, 'hex'))
    union all
    select 1 from events where event_id = any($3::uuid[])
  ),
  inserted as (
    ${INSERT_ROWS.replace("order by r.n", "where not exists (select 1 from differs) order by r.n")}
  ),
  notified as (
    select pg_notify($11, max(global_position)::text) from inserted
    where $11::text is not null having count(*) > 0
  )
  select ${COLUMNS} from inserted, (select count(*) from notified) as n`;

/** Whether an error is PostgreSQL's unique violation (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { code?: unknown }).code === "23505";
}

/**
 * Appends chaining from `heads`: the checked statement alone when `lock` is false
 * (exclusive client), else in a pipelined transaction after the streams' locks.
 *
 * @returns The result and each written stream's new head hash; undefined when nothing was
 *   written because a head differed or an event id is recorded (run the full transaction).
 * @throws The driver's error (connection lost, server error); a unique violation (a
 *   writer that took no lock, or an event id recorded meanwhile) is not thrown but
 *   answered with undefined, as nothing was written.
 */
export async function appendFromKnownHeads(
  client: SqlClient,
  writes: StreamAppend[],
  rows: EventRow[],
  heads: Map<string, KnownHead>,
  { notify, lock }: { notify: boolean; lock: boolean },
): Promise<{ result: AppendResult; heads: Record<string, string> } | undefined> {
  const versions: Record<string, number> = {};
  const hashes: Record<string, string> = {};
  for (const [streamId, head] of heads) {
    versions[streamId] = head.version;
    hashes[streamId] = head.hash;
  }
  const streamIds = writes.map((w) => w.streamId);
  const columns = chainRows(rows, versions, hashes);
  const params = [
    ...columns,
    streamIds,
    streamIds.map((id) => heads.get(id)!.version),
    streamIds.map((id) => heads.get(id)!.hash),
    notify ? EVENTS_CHANNEL : null,
  ];
  let inserted: EventRecordRow[];
  try {
    if (lock) {
      const [, rows] = await client.pipeline!([
        [LOCK_STREAMS, [streamIds]],
        [APPEND_CHECKED, params],
      ]);
      inserted = rows as EventRecordRow[];
    } else {
      inserted = await client.query<EventRecordRow>(APPEND_CHECKED, params);
    }
  } catch (error) {
    if (isUniqueViolation(error)) return undefined;
    throw error;
  }
  if (inserted.length === 0) return undefined;
  return { result: { versions, events: inOrder(rows, inserted) }, heads: hashes };
}
