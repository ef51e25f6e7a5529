/**
 * The stream heads a seal covers, computed from the events that committed since the
 * previous seal plus a cache of the heads that seal covered (table `sealed_heads`), instead
 * of an aggregate over the whole log.
 *
 * Why a cache, and why it is safe. A seal covers the events below its horizon (an `xid8`:
 * every transaction below it had ended), and for each stream those events are a prefix of
 * it, so the heads of seal N are the heads of seal N−1 overlaid with the heads of the
 * window `previous_horizon <= transaction_id < horizon` (read through the
 * `(transaction_id, global_position)` index), minus the streams archived in between. No
 * event can land below a horizon once it is taken (a transaction that gets its id later gets
 * a higher one), so that window holds exactly what the previous seal did not cover,
 * including the events of transactions that were open across it; `audit-seals` is one of
 * the streams (a seal's own events fall in the next window). Table `sealed_heads` holds the
 * heads of the latest seal; the seal and the archive (`archive_streams.ts`) write it in
 * their own transactions, both under the advisory lock of `audit-seals` (PGlite, one
 * transaction at a time, needs no lock), so it moves with the seals. It is derived, never
 * trusted: before use it must hash, together with the heads archived since, to the latest
 * seal's `heads_hash`, with its `streams` and `events` counts. A cache that does not (an
 * empty table created on an existing log, rows edited or deleted, a seal or archive written
 * by code that did not maintain it) is rebuilt from the full aggregate below the horizon, as
 * before the cache.
 * Either way the seal's data are those of the full aggregate ({@linkcode fullScanHeads}).
 *
 * Cost: the window's events (an index range scan), plus reading every cached head's stream
 * id and entry once, through a cursor in key order, to hash the heads the latest seal
 * covered (the check) and those the new seal covers (one row per stream, not per event); a
 * rebuild costs the full aggregate once, with every head sent to the process, as before the
 * cache.
 *
 * @module
 */

import type { SqlTx } from "./sql_client.ts";
import { ARCHIVE_EVENT_TYPE } from "./archive_streams.ts";
import { compareCodePoints, headEntry, headsHash, HeadsHasher, SEAL_STREAM } from "./hash_chain.ts";

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
    events bigint not null check (events > 0),
    entry text not null
  )`,
  `comment on table sealed_heads is
    'Cache of the stream heads covered by the latest audit.sealed event (head version, its '
    'hash, number of events below the horizon, and the head as the heads hash covers it: '
    'JSON [stream_id, version, hash]), minus the streams archived since. Written '
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

/**
 * A covered head as the seal handles them in bulk: `[stream_id, version, hash_hex, events]`
 * (lists of these are sorted by stream id in code point order).
 */
export type HeadRow = [streamId: string, version: number, hash: string, events: number];

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

/** The aggregate of every stream's head below `$1` (an `xid8`). */
const FULL_AGGREGATE = `
  select h.stream_id, h.version, h.events, e.hash, e.transaction_id
  from (
    select stream_id, max(stream_version) as version, count(*) as events
    from events where transaction_id < $1::xid8 group by stream_id
  ) as h
  join events e on e.stream_id = h.stream_id and e.stream_version = h.version`;

/**
 * Every stream's head below `horizon`, by one aggregate over all the events below it: the
 * seal's computation before the cache, still used to rebuild it, and the reference the
 * tests and the benchmark compare the cached computation with.
 *
 * @param tx Where to read (a transaction or a client).
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
    `select stream_id, version, events, encode(hash, 'hex') as hash,
       transaction_id >= $2::xid8 as changed
     from (${FULL_AGGREGATE}) as heads`,
    [horizon, previousHorizon],
  );
}

/**
 * The heads of the streams that have events in the window `from <= transaction_id < to`:
 * their highest version in it and its hash, and how many of their events are in it. Read
 * through the `(transaction_id, global_position)` index, so its cost is that of the window.
 *
 * @param tx The seal's transaction.
 * @param from `xid8` as a decimal string: the previous seal's horizon.
 * @param to `xid8`: the new horizon.
 * @returns One head per stream with events in the window, sorted by stream id.
 */
export async function windowHeads(tx: SqlTx, from: string, to: string): Promise<HeadRow[]> {
  const rows = await tx.query<CoveredHead>(
    `select w.stream_id, w.version, w.events, encode(e.hash, 'hex') as hash
     from (
       select stream_id, max(stream_version) as version, count(*) as events
       from events where transaction_id >= $1::xid8 and transaction_id < $2::xid8
       group by stream_id
     ) as w
     join events e on e.stream_id = w.stream_id and e.stream_version = w.version`,
    [from, to],
  );
  return sortRows(rows.map((h) => [h.stream_id, Number(h.version), h.hash, Number(h.events)]));
}

/**
 * Summarises covered heads the way a seal records them.
 *
 * @param heads One head per stream, in any order.
 */
export function summarise(heads: readonly CoveredHead[]): CoveredSummary {
  return {
    streams: heads.length,
    events: heads.reduce((sum, head) => sum + Number(head.events), 0),
    headsHash: headsHash(
      heads.map((h) => ({ streamId: h.stream_id, version: Number(h.version), hash: h.hash })),
    ),
  };
}

/**
 * Fills `sealed_heads` with every stream's head below `horizon`, by one aggregate over the
 * events below it, replacing what it held: the first seal, and any seal that finds the
 * cache not matching the latest seal. The heads hash is computed here from the aggregate,
 * sorted in the process, never from the table's order.
 *
 * @param tx The seal's transaction.
 * @param horizon `xid8` as a decimal string.
 * @returns The heads, sorted by stream id, and their summary.
 */
export async function rebuildSealedHeads(
  tx: SqlTx,
  horizon: string,
): Promise<{ heads: HeadRow[]; summary: CoveredSummary }> {
  await ensureTable(tx);
  const heads = sortRows(
    (await fullScanHeads(tx, horizon, horizon))
      .map((h): HeadRow => [h.stream_id, Number(h.version), h.hash, Number(h.events)]),
  );
  await tx.query("delete from sealed_heads");
  for (let i = 0; i < heads.length; i += WRITE_ROWS) {
    await writeRows(tx, heads.slice(i, i + WRITE_ROWS));
  }
  const hasher = new HeadsHasher();
  let events = 0;
  for (const [streamId, version, hash, n] of heads) {
    hasher.add(streamId, version, hash);
    events += n;
  }
  return { heads, summary: { streams: heads.length, events, headsHash: hasher.digest() } };
}

/**
 * Moves `sealed_heads` from the latest seal's heads to those of a new seal, in the seal's
 * transaction (which holds the lock of `audit-seals`), and returns what the new seal
 * covers. Uses the cache when it matches `last` (see the module), else rebuilds it.
 *
 * @param tx The seal's transaction.
 * @param options `last`: the latest seal; `horizon`: the new seal's; `changed`:
 *   {@linkcode windowHeads} from the latest seal's horizon to `horizon`.
 * @returns The new seal's counts and heads hash, and whether the cache was rebuilt.
 */
export async function advanceSealedHeads(
  tx: SqlTx,
  options: { last: LastSeal; horizon: string; changed: readonly HeadRow[] },
): Promise<CoveredSummary & { rebuilt: boolean }> {
  const { last, horizon, changed } = options;
  await ensureTable(tx);
  const [{ encoding }] = await tx.query<{ encoding: string }>(
    "select current_setting('server_encoding') as encoding",
  );
  const archived = await archivedSince(tx, last.version);
  const [cached] = await tx.query<{ events: number }>(
    "select coalesce(sum(events), 0)::int8 as events from sealed_heads",
  );
  // The table is read in key order (collate "C": byte order, which is code point order in
  // UTF-8 and in SQL_ASCII holding UTF-8); other encodings take the full aggregate.
  const hashed = ["UTF8", "SQL_ASCII"].includes(encoding)
    ? await hashSealedHeads(tx, { archived, changed })
    : undefined;
  const events = Number(cached.events) + archived.reduce((sum, head) => sum + head[3], 0);
  if (
    !hashed || hashed.before.streams !== Number(last.data.streams) ||
    events !== Number(last.data.events) || hashed.before.headsHash !== last.data.heads_hash
  ) {
    return { ...(await rebuildSealedHeads(tx, horizon)).summary, rebuilt: true };
  }
  for (let i = 0; i < changed.length; i += WRITE_ROWS) {
    await writeRows(tx, changed.slice(i, i + WRITE_ROWS));
  }
  return {
    streams: hashed.after.streams,
    events: Number(cached.events) + changed.reduce((sum, head) => sum + head[3], 0),
    headsHash: hashed.after.headsHash,
    rebuilt: false,
  };
}

/** Rows written per statement. */
const WRITE_ROWS = 20_000;

/**
 * Upserts heads into `sealed_heads`: a new stream's row is inserted, a known stream's row
 * takes the new head and adds the events (`events` of a window are those in the window).
 */
async function writeRows(tx: SqlTx, rows: readonly HeadRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `insert into sealed_heads (stream_id, version, hash, events, entry)
     select s, v, decode(h, 'hex'), n, e
     from unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[]) as u(s, v, h, n, e)
     on conflict (stream_id) do update
       set version = excluded.version, hash = excluded.hash, entry = excluded.entry,
         events = sealed_heads.events + excluded.events`,
    [
      rows.map((r) => r[0]),
      rows.map((r) => r[1]),
      rows.map((r) => r[2]),
      rows.map((r) => r[3]),
      rows.map((r) => headEntry(r[0], r[1], r[2])),
    ],
  );
}

async function ensureTable(tx: SqlTx): Promise<void> {
  const [{ missing }] = await tx.query<{ missing: boolean }>(
    "select to_regclass('sealed_heads') is null as missing",
  );
  if (missing) {
    for (const statement of SEALED_HEADS_SCHEMA_STATEMENTS) await tx.query(statement);
  }
}

/** Rows fetched per page of the cursor over `sealed_heads`. */
const FETCH_ROWS = 20_000;

/**
 * Reads the cached heads' entries once, in key order through a cursor (the stream id and
 * the entry: two text columns per stream, hashed as they come), and hashes two lists
 * merged with them: `before`, the cached heads plus `archived` (which must not be cached:
 * else undefined is returned), what the latest seal covered; `after`, the cached heads
 * overlaid with `changed` (a changed stream's head replaces its cached one, a new one is
 * added), what the new seal covers. Both lists must be sorted by stream id.
 */
async function hashSealedHeads(
  tx: SqlTx,
  options: { archived: readonly HeadRow[]; changed: readonly HeadRow[] },
): Promise<{ before: Hashed; after: Hashed } | undefined> {
  const { archived, changed } = options;
  const before = new HeadsHasher();
  const after = new HeadsHasher();
  const entry = (row: HeadRow) => headEntry(row[0], row[1], row[2]);
  let a = 0; // next of `archived`
  let c = 0; // next of `changed`
  await tx.query(
    `declare sealed_heads_cursor no scroll cursor for
       select stream_id, entry from sealed_heads order by stream_id`,
  );
  try {
    for (;;) {
      const rows = await tx.query<{ stream_id: string; entry: string }>(
        `fetch forward ${FETCH_ROWS} from sealed_heads_cursor`,
      );
      for (const row of rows) {
        while (a < archived.length && compareCodePoints(archived[a][0], row.stream_id) < 0) {
          before.addEntry(entry(archived[a++]));
        }
        if (a < archived.length && archived[a][0] === row.stream_id) return undefined;
        before.addEntry(row.entry);
        while (c < changed.length && compareCodePoints(changed[c][0], row.stream_id) < 0) {
          after.addEntry(entry(changed[c++]));
        }
        if (c < changed.length && changed[c][0] === row.stream_id) {
          after.addEntry(entry(changed[c++]));
        } else after.addEntry(row.entry);
      }
      if (rows.length < FETCH_ROWS) break;
    }
  } finally {
    await tx.query("close sealed_heads_cursor");
  }
  for (; a < archived.length; a++) before.addEntry(entry(archived[a]));
  for (; c < changed.length; c++) after.addEntry(entry(changed[c]));
  return {
    before: { streams: before.count, headsHash: before.digest() },
    after: { streams: after.count, headsHash: after.digest() },
  };
}

/** A list of heads as a seal records it. */
interface Hashed {
  /** Number of heads. */
  streams: number;
  /** Their heads hash. */
  headsHash: string;
}

/** The heads recorded by the `audit.archived` events after seal `version`, sorted. */
async function archivedSince(tx: SqlTx, version: number): Promise<HeadRow[]> {
  const events = await tx.query<{ heads: [string, number, string][] }>(
    `select data->'heads' as heads from events
     where stream_id = $1 and stream_version > $2::int8 and type = $3`,
    [SEAL_STREAM, version, ARCHIVE_EVENT_TYPE],
  );
  // An archived stream's events are its versions (versions have no holes).
  return sortRows(events.flatMap((e) => e.heads.map(([s, v, h]): HeadRow => [s, v, h, v])));
}

/** Sorts rows by stream id in code point order, after a linear check that they are not. */
function sortRows(rows: HeadRow[]): HeadRow[] {
  for (let i = 1; i < rows.length; i++) {
    if (compareCodePoints(rows[i - 1][0], rows[i][0]) > 0) {
      return rows.sort((a, b) => compareCodePoints(a[0], b[0]));
    }
  }
  return rows;
}
