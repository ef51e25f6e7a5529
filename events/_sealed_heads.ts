/**
 * The stream heads a seal covers, computed from the events that committed since the
 * previous seal plus a cache of the heads that seal covered (table `sealed_heads`), instead
 * of an aggregate over the whole log.
 *
 * Why a cache, and why it is safe. A seal covers the events below its horizon (an `xid8`:
 * every transaction below it had ended), and for each stream those events are a prefix of
 * it, so the heads of seal N are the heads of seal N−1 overlaid with the heads of the
 * window `previous_horizon <= transaction_id < horizon` (read through the
 * `(transaction_id, global_position)` index), minus the streams archived in between. Table
 * `sealed_heads` holds the heads of the latest seal; the seal and the archive
 * (`archive_streams.ts`) write it in their own transactions, both under the advisory lock
 * of `audit-seals`, so it moves with the seals. It is derived, never trusted: before use it
 * must hash, together with the heads archived since, to the latest seal's `heads_hash`, with
 * its `streams` and `events` counts. A cache that does not (an empty table created on an
 * existing log, rows edited or deleted, a seal or archive written by code that did not
 * maintain it) is rebuilt from the full aggregate below the horizon, as before the cache.
 * Either way the seal's data are those of the full aggregate ({@linkcode fullScanHeads}).
 *
 * Cost: the window's events (an index range scan), plus reading and hashing every cached
 * head (one row per stream, not per event); a rebuild costs the full aggregate once.
 *
 * @module
 */

import type { SqlTx } from "./sql_client.ts";
import { ARCHIVE_EVENT_TYPE } from "./archive_streams.ts";
import { headsHash, SEAL_STREAM } from "./hash_chain.ts";

/**
 * Statements creating table `sealed_heads` (idempotent); run by `migrateEventsSchema`, and
 * by the seal when the table is missing. The key collates `"C"`: code point order in
 * UTF-8, the order of a seal's heads hash, so the rows read back nearly sorted.
 */
export const SEALED_HEADS_SCHEMA_STATEMENTS: readonly string[] = [
  `create table if not exists sealed_heads (
    stream_id text collate "C" primary key,
    version bigint not null check (version > 0),
    hash bytea not null check (octet_length(hash) = 32),
    events bigint not null check (events > 0)
  )`,
  `comment on table sealed_heads is
    'Cache of the stream heads covered by the latest audit.sealed event (head version, its '
    'hash, number of events below the horizon), minus the streams archived since. Written '
    'by the seal and the archive; checked against the latest seal before use and rebuilt '
    'from events when it does not match, so rows may be deleted at any time.'`,
];

/** A stream's head as of a horizon, with how many of its events are below it. */
export interface CoveredHead {
  /** The stream. */
  stream_id: string;
  /** Its highest version below the horizon. */
  version: number;
  /** That event's chain hash, lower case hex. */
  hash: string;
  /** Number of its events below the horizon. */
  events: number;
}

/** A covered head, and whether it changed since the previous seal. */
export interface ScannedHead extends CoveredHead {
  /** Whether the head's event is at or above the previous seal's horizon. */
  changed: boolean;
}

/** What a seal records about the heads it covers, besides the changed ones. */
export interface CoveredSummary {
  /** Number of streams covered. */
  streams: number;
  /** Number of events covered. */
  events: number;
  /** `headsHash` of the covered heads. */
  headsHash: string;
}

/** The latest seal, as `sealInTx` reads it. */
export interface LastSeal {
  /** Version of its `audit.sealed` event in `audit-seals`. */
  version: number;
  /** Its recorded `streams`, `events` and `heads_hash`. */
  data: { streams: number; events: number; heads_hash: string };
}

/**
 * Every stream's head below `horizon`, by one aggregate over all the events below it: the
 * seal's computation before the cache, still used to rebuild it, and the reference the
 * tests compare the cached computation with.
 *
 * @param tx The seal's transaction.
 * @param horizon `xid8` as a decimal string: heads of the events below it.
 * @param previousHorizon `xid8`: a head at or above it is `changed`.
 * @returns One head per stream, in no particular order.
 */
export async function fullScanHeads(
  tx: SqlTx,
  horizon: string,
  previousHorizon: string,
): Promise<ScannedHead[]> {
  return await tx.query<ScannedHead>(
    `select h.stream_id, h.version, h.events, encode(e.hash, 'hex') as hash,
       e.transaction_id >= $2::xid8 as changed
     from (
       select stream_id, max(stream_version) as version, count(*) as events
       from events where transaction_id < $1::xid8 group by stream_id
     ) as h
     join events e on e.stream_id = h.stream_id and e.stream_version = h.version`,
    [horizon, previousHorizon],
  );
}

/**
 * The heads of the streams that have events in the window `from <= transaction_id < to`:
 * their highest version in it and its hash, and how many of their events are in it. Read
 * through the `(transaction_id, global_position)` index, so its cost is that of the window.
 *
 * @param tx The seal's transaction.
 * @param from `xid8` as a decimal string: the previous seal's horizon (`"0"`: none).
 * @param to `xid8`: the new horizon.
 * @returns One head per stream with events in the window, in no particular order.
 */
export async function windowHeads(tx: SqlTx, from: string, to: string): Promise<CoveredHead[]> {
  return await tx.query<CoveredHead>(
    `select w.stream_id, w.version, w.events, encode(e.hash, 'hex') as hash
     from (
       select stream_id, max(stream_version) as version, count(*) as events
       from events where transaction_id >= $1::xid8 and transaction_id < $2::xid8
       group by stream_id
     ) as w
     join events e on e.stream_id = w.stream_id and e.stream_version = w.version`,
    [from, to],
  );
}

/** Summarises covered heads the way a seal records them. */
export function summarise(heads: readonly CoveredHead[]): CoveredSummary {
  return {
    streams: heads.length,
    events: heads.reduce((sum, head) => sum + head.events, 0),
    headsHash: headsHash(
      heads.map((h) => ({ streamId: h.stream_id, version: h.version, hash: h.hash })),
    ),
  };
}

/**
 * Moves `sealed_heads` from the latest seal's heads to those of a new seal at `horizon`,
 * in the seal's transaction (which holds the lock of `audit-seals`), and returns what the
 * new seal covers. Uses the cache when it matches `last` (see the module), else rebuilds
 * it from the full aggregate below `horizon`.
 *
 * @param tx The seal's transaction.
 * @param options `last`: the latest seal (absent: none yet); `horizon`: the new seal's;
 *   `changed`: {@linkcode windowHeads} from the latest seal's horizon to `horizon`.
 * @returns The new seal's counts and heads hash, and whether the cache was rebuilt.
 */
export async function advanceSealedHeads(
  tx: SqlTx,
  options: { last?: LastSeal; horizon: string; changed: readonly CoveredHead[] },
): Promise<CoveredSummary & { rebuilt: boolean }> {
  const [{ missing }] = await tx.query<{ missing: boolean }>(
    "select to_regclass('sealed_heads') is null as missing",
  );
  if (missing) {
    for (const statement of SEALED_HEADS_SCHEMA_STATEMENTS) await tx.query(statement);
  }
  const cached = await readSealedHeads(tx);
  if (!(await matchesSeal(tx, cached, options.last))) {
    await tx.query("delete from sealed_heads");
    await tx.query(
      `insert into sealed_heads (stream_id, version, hash, events)
       select h.stream_id, h.version, e.hash, h.events
       from (
         select stream_id, max(stream_version) as version, count(*) as events
         from events where transaction_id < $1::xid8 group by stream_id
       ) as h
       join events e on e.stream_id = h.stream_id and e.stream_version = h.version`,
      [options.horizon],
    );
    return { ...summarise(await readSealedHeads(tx)), rebuilt: true };
  }
  const changed = new Map(options.changed.map((head) => [head.stream_id, head]));
  const updated: CoveredHead[] = [];
  const heads = cached.map((head) => {
    const next = changed.get(head.stream_id);
    if (!next) return head;
    changed.delete(head.stream_id);
    const merged = { ...next, events: head.events + next.events };
    updated.push(merged);
    return merged;
  });
  for (const head of changed.values()) {
    heads.push(head);
    updated.push(head);
  }
  if (updated.length > 0) {
    await tx.query(
      `insert into sealed_heads (stream_id, version, hash, events)
       select s, v, decode(h, 'hex'), n from unnest($1::text[], $2::int8[], $3::text[], $4::int8[])
         as u(s, v, h, n)
       on conflict (stream_id) do update
         set version = excluded.version, hash = excluded.hash, events = excluded.events`,
      [
        updated.map((h) => h.stream_id),
        updated.map((h) => h.version),
        updated.map((h) => h.hash),
        updated.map((h) => h.events),
      ],
    );
  }
  return { ...summarise(heads), rebuilt: false };
}

/** Every cached head, in stream id order (code point order: the key is `collate "C"`). */
async function readSealedHeads(tx: SqlTx): Promise<CoveredHead[]> {
  return await tx.query<CoveredHead>(
    `select stream_id, version, encode(hash, 'hex') as hash, events
     from sealed_heads order by stream_id`,
  );
}

/**
 * Whether the cached heads are exactly those `last` covered: with the heads archived since
 * it (which left the cache but are still in its hash), they number its `streams`, add up to
 * its `events`, and hash to its `heads_hash`. Without a seal, the cache must be empty.
 */
async function matchesSeal(
  tx: SqlTx,
  cached: readonly CoveredHead[],
  last: LastSeal | undefined,
): Promise<boolean> {
  if (!last) return cached.length === 0;
  const archived = await tx.query<{ heads: [string, number, string][] }>(
    `select data->'heads' as heads from events
     where stream_id = $1 and stream_version > $2::int8 and type = $3`,
    [SEAL_STREAM, last.version, ARCHIVE_EVENT_TYPE],
  );
  const covered = [...cached];
  const ids = new Set(cached.map((head) => head.stream_id));
  for (const { heads } of archived) {
    for (const [streamId, version, hash] of heads) {
      if (ids.has(streamId)) return false; // archived, yet still cached
      ids.add(streamId);
      covered.push({ stream_id: streamId, version, hash, events: version });
    }
  }
  const summary = summarise(covered);
  return summary.streams === Number(last.data.streams) &&
    summary.events === Number(last.data.events) &&
    summary.headsHash === last.data.heads_hash;
}
