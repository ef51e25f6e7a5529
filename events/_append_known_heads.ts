/**
 * The fast path of `append()`: one statement, one round trip, when the heads are known.
 *
 * The transaction of `appendInTx` waits for four answers in turn (BEGIN; locks, replay
 * lookup and heads; INSERT; COMMIT), and under load each answer also waits for the
 * processes to be scheduled; the engine's appends of one set of streams are written one
 * after the other, so each round trip delays the commands queued behind it. When the
 * writer already knows the head (version and chain hash) of every stream it appends to —
 * a new stream (version 0), or one whose head this store wrote last — the new rows and
 * their hashes are computed before the database is asked, and one statement (its own
 * transaction) checks and inserts:
 *
 * - on PostgreSQL, `events_append_check` (a PL/pgSQL function of the schema, see
 *   `schema.ts`) first takes the streams' advisory locks (those of `appendInTx`, so the
 *   two paths exclude each other per stream), then checks the heads and the event ids in
 *   a fresh snapshot (a VOLATILE function's statements each take one), which sees every
 *   writer that held those locks before committed; the rows are inserted only if it
 *   answers true;
 * - on an exclusive client (PGlite) nothing runs beside the statement, and it checks in
 *   its own snapshot.
 *
 * Nothing is inserted (no sequence value is taken) when a head differs from the one
 * expected (another writer got there first, the cached hash is not the head's) or when an
 * event id is recorded (an idempotent retry): the caller then runs the full transaction,
 * which reports the conflict exactly, or replays. The order of the log is that of
 * `appendInTx`: the locks are taken before the transaction id is assigned (at the first
 * inserted row).
 *
 * @module
 */

import type { AppendResult, StreamAppend } from "./event_store.ts";
import type { SqlTx } from "./sql_client.ts";
import type { EventRow } from "./_validate_append.ts";
import { COLUMNS, type EventRecordRow, inOrder } from "./_event_rows.ts";
import { GENESIS_HASH } from "./hash_chain.ts";
import { chainRows, EVENTS_CHANNEL, INSERT_CHUNK, INSERT_ROWS } from "./_append_in_tx.ts";

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
 * null. `ok` decides whether the rows are inserted: `CHECK_HEADS` (the statement's own
 * snapshot; enough when nothing runs beside it) or `CHECK_LOCKED` (locks, then a fresh
 * snapshot). Returns the inserted rows, or none when a head differs or an event id is
 * recorded.
 */
const appendChecked = (ok: string) =>
  `with ok as materialized (${ok}),
  inserted as (
    ${INSERT_ROWS.replace("order by r.n", "where (select ok.ok from ok) order by r.n")}
  ),
  notified as (
    select pg_notify($11, max(global_position)::text) from inserted
    where $11::text is not null having count(*) > 0
  )
  select ${COLUMNS} from inserted, (select count(*) from notified) as n`;

/** The heads and event ids checked in the statement's snapshot. */
const CHECK_HEADS = `select not exists (
      select 1 from unnest($8::text[], $9::int8[], $10::text[]) as x(stream_id, version, hash)
      left join lateral (
        select e.stream_version, e.hash from events e where e.stream_id = x.stream_id
        order by e.stream_version desc limit 1
      ) as h on true
      where coalesce(h.stream_version, 0) <> x.version
        or (x.version > 0 and h.hash <> decode(x.hash, 'hex'))
    ) and not exists (select 1 from events where event_id = any($3::uuid[])) as ok`;

/** The streams' locks, then the same check in a fresh snapshot (see `schema.ts`). */
const CHECK_LOCKED =
  `select events_append_check($8::text[], $9::int8[], $10::text[], $3::uuid[]) as ok`;

const APPEND_CHECKED = appendChecked(CHECK_HEADS);
const APPEND_CHECKED_LOCKED = appendChecked(CHECK_LOCKED);

/** Whether an error is PostgreSQL's unique violation (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { code?: unknown }).code === "23505";
}

/**
 * Appends in one statement chaining from `heads`, checked in the statement's snapshot
 * when `lock` is false (exclusive client), else after the streams' locks.
 *
 * @returns The result and each written stream's new head hash; undefined when nothing was
 *   written because a head differed or an event id is recorded (run the full transaction).
 * @throws The driver's error (connection lost, server error); a unique violation (a
 *   writer that took no lock, or an event id recorded meanwhile) is not thrown but
 *   answered with undefined, as nothing was written.
 */
export async function appendFromKnownHeads(
  client: SqlTx,
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
    inserted = await client.query<EventRecordRow>(
      lock ? APPEND_CHECKED_LOCKED : APPEND_CHECKED,
      params,
    );
  } catch (error) {
    if (isUniqueViolation(error)) return undefined;
    throw error;
  }
  if (inserted.length === 0) return undefined;
  return { result: { versions, events: inOrder(rows, inserted) }, heads: hashes };
}
