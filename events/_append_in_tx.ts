/**
 * The transaction of `append()`: stream locks, idempotent replay, version check, hash
 * chain, insert.
 *
 * @module
 */

import {
  type AppendResult,
  type RecordedEvent,
  type StreamAppend,
  WrongExpectedVersionError,
} from "./event_store.ts";
import type { SqlTx } from "./sql_client.ts";
import type { EventRow } from "./_validate_append.ts";
import { COLUMNS, type EventRecordRow, inOrder } from "./_event_rows.ts";
import { eventHash, GENESIS_HASH } from "./hash_chain.ts";

/** Channel of the `NOTIFY` sent by every append; its payload is the last global position. */
export const EVENTS_CHANNEL = "events";

/**
 * Rows per INSERT statement: each statement sends its rows as seven array parameters, so
 * its text is the same whatever the number of rows and the driver prepares it once per
 * connection (a text per row count cost postgres.js a Parse/Describe round trip each time
 * a new count came up: most appends of the engine's group commit).
 */
export const INSERT_CHUNK = 5000;

/**
 * Inserts rows given as parallel arrays, in array order (the `ordinality` sort makes the
 * sequence hand out positions in that order), returning them. The data and metadata go as
 * their canonical text, cast to jsonb by the server: the driver does not serialise them
 * again, and the hash covers exactly what is stored.
 */
export const INSERT_ROWS = `insert into events (stream_id, stream_version, event_id, type, data,
    metadata, hash)
  select r.stream_id, r.stream_version, r.event_id, r.type, r.data::jsonb, r.metadata::jsonb,
    decode(r.hash, 'hex')
  from unnest($1::text[], $2::int8[], $3::uuid[], $4::text[], $5::text[], $6::text[],
    $7::text[]) with ordinality
    as r(stream_id, stream_version, event_id, type, data, metadata, hash, n)
  order by r.n
  returning ${COLUMNS}`;

/**
 * {@linkcode INSERT_ROWS} that also sends the NOTIFY of the append (a wake-up hint only;
 * listeners catch up by reading from their checkpoint) with the append's last position, in
 * the same round trip: positions grow within the transaction, so the statement's maximum
 * is the append's.
 */
const INSERT_ROWS_NOTIFY = `with inserted as (${INSERT_ROWS})
  select inserted.* from inserted,
    (select pg_notify($8, max(global_position)::text) from inserted) as n`;

/** The streams' advisory locks: one per stream id in `$1`, in the order of the keys. */
export const LOCK_STREAMS = `select pg_advisory_xact_lock(key) from (
    select distinct hashtextextended(stream_id, 0) as key
    from unnest($1::text[]) as s(stream_id) order by key
  ) as keys`;

/** Options of {@linkcode appendInTx}. */
export interface AppendInTxOptions {
  /** Whether to send the NOTIFY of the append. */
  notify: boolean;
  /** Whether to take the streams' advisory locks (false: the client is exclusive). */
  lock: boolean;
}

/**
 * Runs the body of an append inside its transaction.
 *
 * @throws {WrongExpectedVersionError} When a stream is not at its expected version.
 * @throws {TypeError} When event ids are reused without an exact replay.
 */
export async function appendInTx(
  tx: SqlTx,
  writes: StreamAppend[],
  rows: EventRow[],
  { notify, lock }: AppendInTxOptions,
): Promise<{ written: boolean; result: AppendResult; heads?: Record<string, string> }> {
  const streamIds = writes.map((w) => w.streamId);
  // Lock the written streams BEFORE any write, one advisory lock per stream, taken in the
  // order of the lock keys (not of stream ids: two ids may hash to the same key, and only a
  // single total order on keys rules out deadlocks). Advisory locks do not assign a
  // transaction id; Postgres assigns it at our first INSERT, after we hold every lock. A
  // later append to the same stream can only get its lock once we have committed, so it
  // gets a larger transaction_id: within a stream, a later version always has a larger
  // transaction_id, and the (transaction_id, global_position) order of readAll keeps each
  // stream's version order. No global lock: appends to other streams run in parallel.
  // (Skipped when the client runs one transaction at a time: nothing to wait for then.)
  //
  // The lock, the replay lookup and the heads read are sent together (postgres.js
  // pipelines the statements of a transaction): the server runs them in order, so the two
  // reads take their snapshots once the locks are held, and the append waits for one round
  // trip instead of three.
  const explicit = rows.filter((row) => row.explicitId);
  const [, found, heads] = await Promise.all([
    lock ? tx.query(LOCK_STREAMS, [streamIds]) : undefined,
    explicit.length === 0 ? [] : tx.query<EventRecordRow>(
      `select ${COLUMNS} from events where event_id = any($1::uuid[])`,
      [explicit.map((row) => row.eventId)],
    ),
    // Check every expected version before taking any sequence value: a loser burns none.
    // The same query reads each stream's head hash, which the new events chain from.
    tx.query<{ stream_id: string; version: number; hash: string | null }>(
      `select s.stream_id, coalesce(h.stream_version, 0) as version,
         encode(h.hash, 'hex') as hash
       from unnest($1::text[]) as s(stream_id)
       left join lateral (
         select e.stream_version, e.hash from events e where e.stream_id = s.stream_id
         order by e.stream_version desc limit 1
       ) as h on true`,
      [streamIds],
    ),
  ]);

  const replay = asReplay(rows, found);
  if (replay) return { written: false, result: replay };

  const versions: Record<string, number> = {};
  const hashes: Record<string, string> = {};
  for (const { stream_id, version, hash } of heads) {
    versions[stream_id] = version;
    hashes[stream_id] = hash ?? GENESIS_HASH;
  }
  for (const { streamId, expectedVersion } of writes) {
    if (expectedVersion !== "any" && expectedVersion !== versions[streamId]) {
      throw new WrongExpectedVersionError(streamId, expectedVersion, versions[streamId]);
    }
  }

  const recorded: RecordedEvent[] = [];
  for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
    const chunk = rows.slice(start, start + INSERT_CHUNK);
    const columns = chainRows(chunk, versions, hashes);
    // The last chunk also sends the NOTIFY.
    const last = start + INSERT_CHUNK >= rows.length;
    const inserted = notify && last
      ? await tx.query<EventRecordRow>(INSERT_ROWS_NOTIFY, [...columns, EVENTS_CHANNEL])
      : await tx.query<EventRecordRow>(INSERT_ROWS, columns);
    recorded.push(...inOrder(chunk, inserted));
  }
  return { written: true, result: { versions, events: recorded }, heads: hashes };
}

/**
 * Gives each row its stream version and chain hash, continuing from `versions` and
 * `hashes` (each stream's current version and head hash, updated in place), and returns
 * the seven column arrays of {@linkcode INSERT_ROWS}, in row order.
 */
export function chainRows(
  rows: EventRow[],
  versions: Record<string, number>,
  hashes: Record<string, string>,
): unknown[][] {
  const columns: unknown[][] = [[], [], [], [], [], [], []];
  for (const row of rows) {
    const streamVersion = ++versions[row.streamId];
    const hash = eventHash(hashes[row.streamId], { ...row, streamVersion }, {
      data: row.dataJson,
      metadata: row.metadataJson,
    });
    hashes[row.streamId] = hash;
    columns[0].push(row.streamId);
    columns[1].push(streamVersion);
    columns[2].push(row.eventId);
    columns[3].push(row.type);
    columns[4].push(row.dataJson);
    columns[5].push(row.metadataJson);
    columns[6].push(hash);
  }
  return columns;
}

/**
 * Idempotency: `found` are the recorded events whose ids the append's caller chose. When
 * EVERY event of the append has a caller-chosen id and all of them are
 * already recorded (same stream and type), the append is a replay and returns the
 * original events, in the given order, and the stream versions they produced. When only
 * some ids are recorded, or one sits in another stream or has another type, the caller
 * reused ids for different events: a TypeError, and nothing is written.
 */
function asReplay(rows: EventRow[], found: EventRecordRow[]): AppendResult | undefined {
  if (found.length === 0) return undefined;
  const byId = new Map(found.map((row) => [row.event_id, row]));
  const mismatch = rows.find((row) => {
    const original = byId.get(row.eventId);
    return !original || original.stream_id !== row.streamId || original.type !== row.type;
  });
  if (mismatch) {
    throw new TypeError(
      `Append reuses recorded event ids (${[...byId.keys()].join(", ")}) but is not an exact ` +
        `replay: event ${mismatch.eventId} (${mismatch.type} in ${mismatch.streamId}) differs`,
    );
  }
  const events = inOrder(rows, found);
  const versions: Record<string, number> = {};
  for (const e of events) {
    versions[e.streamId] = Math.max(versions[e.streamId] ?? 0, e.streamVersion);
  }
  return { versions, events };
}
