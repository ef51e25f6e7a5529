/**
 * Retention: moves whole, finished, sealed streams out of `events` into an archive table,
 * and records what left in the log itself (an `audit.archived` event in `audit-seals`), so
 * that the audit chain still verifies across the archive boundary.
 *
 * @module
 */

import type { StreamAppend } from "./event_store.ts";
import type { SqlClient, SqlTx } from "./sql_client.ts";
import { appendInTx } from "./_append_in_tx.ts";
import { quoteSchemaName } from "./_schema_name.ts";
import { DEFAULT_MAX_EVENT_BYTES, validateAppend } from "./_validate_append.ts";
import { compareCodePoints, headsHash, SEAL_EVENT_TYPE, SEAL_STREAM } from "./hash_chain.ts";

/**
 * Type of the event, in stream `audit-seals`, that records the streams moved to the
 * archive: `{archive, seal_version, horizon, streams, events, heads_hash, heads}` with
 * `heads` as `[stream_id, version, hash_hex]` (the last archived event of each stream: the
 * boundary hash) and `heads_hash` over them as in a seal.
 */
export const ARCHIVE_EVENT_TYPE = "audit.archived";

/** Where the archive ends: events up to a global position, or recorded before an instant. */
export type ArchiveCut = { position: number } | { instant: Date };

/** Options of {@linkcode archiveStreams}. */
export interface ArchiveStreamsOptions {
  /**
   * Schema of the archive; its table is `events`, with the columns, keys and indexes of the
   * live table (so an event store opened on that schema reads it). Created if missing.
   */
  archiveSchema: string;
  /** A stream is archived only when its last event is at or before the cut. */
  before: ArchiveCut;
  /** Only streams whose id starts with this. Never `audit-seals`. */
  streamPrefix: string;
  /** Only streams whose last event has one of these types (the stream is finished). */
  closedTypes: readonly string[];
  /** Streams moved per transaction (and recorded per `audit.archived` event). @default 1000 */
  batchStreams?: number;
  /** Id of the `audit.archived` events. @default crypto.randomUUID */
  newId?: () => string;
  /** Whether the appends send a `NOTIFY`. @default true */
  notify?: boolean;
}

/** What {@linkcode archiveStreams} moved. */
export interface ArchiveStreamsResult {
  /** Streams moved. */
  streams: number;
  /** Events moved. */
  events: number;
  /** `audit.archived` events written (one per batch). */
  records: number;
}

/**
 * Moves every stream that is finished (its last event's type is in `closedTypes`), wholly
 * before the cut, and wholly covered by the latest seal (every event's `transaction_id`
 * below its horizon) from `events` to `<archiveSchema>.events`, in batches. Each batch is
 * one transaction: it takes the advisory locks of `audit-seals` and of the moved streams
 * (transaction-scoped, in key order, like appends: nothing can be appended to a stream while
 * it moves), copies the rows, deletes them, and appends an `audit.archived` event recording
 * each moved stream's head. The heads the seals recorded for those streams leave the fold
 * of later seals (and the seal's cache of heads, table `sealed_heads`, in the same
 * transaction); `verifyLog` checks the archive against the recorded heads.
 *
 * Seal first (`store.seal()`): only sealed events are ever archived. PostgreSQL and PGlite
 * run the same SQL; the command line (`deno task archive`) offers it on PostgreSQL only.
 *
 * @param client The connection of the live log (its `events` table exists).
 * @param options Archive schema, cut, which streams, batch size.
 * @returns Counts of what moved.
 * @throws {TypeError} When `archiveSchema` is not a plain lower case identifier, or
 *   `streamPrefix` could match `audit-seals`.
 * @throws {RangeError} When the cut or `batchStreams` is out of range.
 * @throws {Error} The driver's error; the batch it happened in is rolled back whole.
 */
export async function archiveStreams(
  client: SqlClient,
  options: ArchiveStreamsOptions,
): Promise<ArchiveStreamsResult> {
  const archive = quoteSchemaName(options.archiveSchema);
  const { before, streamPrefix, closedTypes, batchStreams = 1000 } = options;
  if (SEAL_STREAM.startsWith(streamPrefix)) {
    throw new TypeError(`streamPrefix must not match ${SEAL_STREAM}, got "${streamPrefix}"`);
  }
  if (!Number.isSafeInteger(batchStreams) || batchStreams < 1) {
    throw new RangeError(`batchStreams must be an integer >= 1, got ${batchStreams}`);
  }
  const cut = "position" in before
    ? { column: "global_position", value: before.position, cast: "int8" }
    : { column: "recorded_at", value: before.instant.toISOString(), cast: "timestamptz" };
  if ("position" in before && (!Number.isSafeInteger(before.position) || before.position < 0)) {
    throw new RangeError(`position must be an integer >= 0, got ${before.position}`);
  }
  if ("instant" in before && Number.isNaN(before.instant.getTime())) {
    throw new RangeError("instant must be a valid date");
  }
  await client.transaction(async (tx) => {
    await tx.query(`create schema if not exists ${archive}`);
    await tx.query(
      `create table if not exists ${archive}.events (like events including all)`,
    );
  });
  const newId = options.newId ?? (() => crypto.randomUUID());
  const appendOptions = {
    newId,
    maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
    notify: options.notify ?? true,
    lock: !client.exclusive,
  };
  const total: ArchiveStreamsResult = { streams: 0, events: 0, records: 0 };
  let after = 0;
  for (;;) {
    const moved = await client.transaction((tx) =>
      moveBatch(tx, {
        archive,
        archiveName: options.archiveSchema,
        cut,
        streamPrefix,
        closedTypes,
        limit: batchStreams,
        after,
        appendOptions,
      })
    );
    if (moved.last === after) break; // walked to the end
    after = moved.last;
    if (moved.streams === 0) continue; // every candidate changed meanwhile
    total.streams += moved.streams;
    total.events += moved.events;
    total.records++;
  }
  return total;
}

interface BatchOptions {
  archive: string;
  archiveName: string;
  cut: { column: string; value: number | string; cast: string };
  streamPrefix: string;
  closedTypes: readonly string[];
  limit: number;
  /** Global position the batch's walk starts after. */
  after: number;
  appendOptions: Parameters<typeof validateAppend>[1] & { notify: boolean; lock: boolean };
}

/** One batch, inside its transaction. */
async function moveBatch(
  tx: SqlTx,
  o: BatchOptions,
): Promise<{ streams: number; events: number; last: number }> {
  const [seal] = await tx.query<{ version: number; horizon: string }>(
    `select stream_version as version, data->>'horizon' as horizon from events
     where stream_id = $1 and type = $2 order by stream_version desc limit 1`,
    [SEAL_STREAM, SEAL_EVENT_TYPE],
  );
  if (!seal) return { streams: 0, events: 0, last: o.after };
  // Candidates first, then their locks, then the same question again under the locks.
  // A finished stream's head is a closed event below the horizon and the cut with nothing
  // after it (versions grow with positions and transaction ids, so the whole stream is
  // below both). Walk the primary key from `after`: each batch starts where the last one
  // stopped, never over the rows it already moved.
  const select = (restrictTo?: string[]) =>
    tx.query<{ stream_id: string; version: number; hash: string; global_position: number }>(
      `select e.stream_id, e.stream_version as version, encode(e.hash, 'hex') as hash,
         e.global_position
       from events e
       where e.global_position > $6::int8 and starts_with(e.stream_id, $1)
         and e.type = any($4::text[]) and e.transaction_id < $2::xid8
         and e.${o.cut.column} <= $3::${o.cut.cast}
         and not exists (
           select 1 from events n
           where n.stream_id = e.stream_id and n.stream_version > e.stream_version
         )
         ${restrictTo ? "and e.stream_id = any($7::text[])" : ""}
       order by e.global_position limit $5::int8`,
      [
        o.streamPrefix,
        seal.horizon,
        o.cut.value,
        [...o.closedTypes],
        o.limit,
        o.after,
        ...(restrictTo ? [restrictTo] : []),
      ],
    );
  const candidates = await select();
  if (candidates.length === 0) return { streams: 0, events: 0, last: o.after };
  const last = candidates.at(-1)!.global_position;
  if (o.appendOptions.lock) {
    await tx.query(
      `select pg_advisory_xact_lock(key) from (
         select distinct hashtextextended(stream_id, 0) as key
         from unnest($1::text[]) as s(stream_id) order by key
       ) as keys`,
      [[SEAL_STREAM, ...candidates.map((c) => c.stream_id)]],
    );
  }
  // Under the locks, ask again: an append may have come in meanwhile. A seal taken
  // meanwhile has a later horizon and records the same heads for these streams.
  const heads = (await select(candidates.map((c) => c.stream_id)))
    .sort((a, b) => compareCodePoints(a.stream_id, b.stream_id));
  if (heads.length === 0) return { streams: 0, events: 0, last };
  const ids = heads.map((h) => h.stream_id);
  const [copied] = await tx.query<{ n: number }>(
    `with moved as (
       insert into ${o.archive}.events select * from events where stream_id = any($1::text[])
       returning 1
     ) select count(*)::int8 as n from moved`,
    [ids],
  );
  const [deleted] = await tx.query<{ n: number }>(
    `with gone as (delete from events where stream_id = any($1::text[]) returning 1)
     select count(*)::int8 as n from gone`,
    [ids],
  );
  // The moved streams leave the heads the next seal covers (events/_sealed_heads.ts).
  // (A missing table is created and filled by the next seal.)
  const [{ cached }] = await tx.query<{ cached: boolean }>(
    "select to_regclass('sealed_heads') is not null as cached",
  );
  if (cached) {
    await tx.query("delete from sealed_heads where stream_id = any($1::text[])", [ids]);
  }
  const events = heads.reduce((sum, h) => sum + h.version, 0); // versions have no holes
  if (copied.n !== events || deleted.n !== events) {
    throw new Error(
      `Archive batch moved ${copied.n} and deleted ${deleted.n} events, expected ${events}`,
    );
  }
  const entries: [string, number, string][] = heads.map((h) => [h.stream_id, h.version, h.hash]);
  const writes: StreamAppend[] = [{
    streamId: SEAL_STREAM,
    expectedVersion: "any",
    events: [{
      type: ARCHIVE_EVENT_TYPE,
      data: {
        archive: `${o.archiveName}.events`,
        seal_version: seal.version,
        horizon: seal.horizon,
        streams: heads.length,
        events,
        heads_hash: headsHash(
          heads.map((h) => ({ streamId: h.stream_id, version: h.version, hash: h.hash })),
        ),
        heads: entries,
      },
    }],
  }];
  await appendInTx(tx, writes, validateAppend(writes, o.appendOptions), o.appendOptions);
  return { streams: heads.length, events, last };
}
