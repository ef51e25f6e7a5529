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

/** Rows per INSERT statement (7 parameters each, under Postgres' 65,535 limit). */
const INSERT_CHUNK = 1000;

/** Value expressions of the inserted columns, in order; `$` stands for the parameter. */
const INSERT_VALUES = [
  "$",
  "$::int8",
  "$::uuid",
  "$",
  "$::text::jsonb",
  "$::text::jsonb",
  "decode($, 'hex')",
];

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
): Promise<{ written: boolean; result: AppendResult }> {
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
    lock
      ? tx.query(
        `select pg_advisory_xact_lock(key) from (
           select distinct hashtextextended(stream_id, 0) as key
           from unnest($1::text[]) as s(stream_id) order by key
         ) as keys`,
        [streamIds],
      )
      : undefined,
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
    const params: unknown[] = [];
    const values = chunk.map((row) => {
      const streamVersion = ++versions[row.streamId];
      const hash = eventHash(hashes[row.streamId], { ...row, streamVersion }, {
        data: row.dataJson,
        metadata: row.metadataJson,
      });
      hashes[row.streamId] = hash;
      const base = params.length;
      // data and metadata go as their canonical text (cast to jsonb by the server): the
      // driver does not serialise them again, and the hash covers exactly what is stored.
      params.push(
        row.streamId,
        streamVersion,
        row.eventId,
        row.type,
        row.dataJson,
        row.metadataJson,
        hash,
      );
      const placeholders = INSERT_VALUES.map((value, i) =>
        value.replace("$", () => `$${base + i + 1}`)
      );
      return `(${placeholders.join(", ")})`;
    });
    const insert = `insert into events (stream_id, stream_version, event_id, type, data,
       metadata, hash) values ${values.join(", ")} returning ${COLUMNS}`;
    let text = insert;
    if (notify && start + INSERT_CHUNK >= rows.length) {
      // The last chunk also sends the NOTIFY (a wake-up hint only; listeners catch up by
      // reading from their checkpoint) with the append's last position, in the same round
      // trip: positions grow within the transaction, so the chunk's maximum is the append's.
      params.push(EVENTS_CHANNEL);
      text = `with inserted as (${insert})
        select inserted.* from inserted,
          (select pg_notify($${params.length}, max(global_position)::text) from inserted) as n`;
    }
    const inserted = await tx.query<EventRecordRow>(text, params);
    recorded.push(...inOrder(chunk, inserted));
  }
  return { written: true, result: { versions, events: recorded } };
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
