/**
 * The `events` table and its idempotent migration.
 *
 * @module
 */

import type { EventRecordRow } from "./_event_rows.ts";
import type { SqlClient, SqlTx } from "./sql_client.ts";
import { eventHash, GENESIS_HASH } from "./hash_chain.ts";
import { SNAPSHOT_SCHEMA_STATEMENTS } from "./snapshot_store.ts";
import { SEALED_HEADS_SCHEMA_STATEMENTS } from "./_sealed_heads.ts";

/**
 * Advisory lock key that serialises concurrent migrations (two processes opening the same
 * database at once would otherwise race on `CREATE TABLE IF NOT EXISTS`).
 */
const MIGRATION_LOCK_KEY = 7_310_442_017;

/** Statements of the migration, in order; each is idempotent. */
export const EVENTS_SCHEMA_STATEMENTS: readonly string[] = [
  `create table if not exists events (
    global_position bigserial primary key,
    stream_id text not null,
    stream_version bigint not null check (stream_version > 0),
    event_id uuid not null unique,
    type text not null,
    data jsonb not null,
    metadata jsonb not null default '{}',
    recorded_at timestamptz not null default now(),
    transaction_id xid8 not null default pg_current_xact_id(),
    hash bytea not null check (octet_length(hash) = 32),
    constraint events_stream_version_key unique (stream_id, stream_version)
  )`,
  // Tables created before the hash chain: the column is added nullable, the migration
  // fills it (see backfillHashes), then makes it NOT NULL.
  `alter table events add column if not exists hash bytea check (octet_length(hash) = 32)`,
  `create index if not exists events_transaction_order_idx
    on events (transaction_id, global_position)`,
  // The check of an append whose heads the writer knows (events/_append_known_heads.ts),
  // run inside its INSERT statement: takes the streams' advisory locks (those of
  // appendInTx, in key order), then — each statement of a VOLATILE function reads with a
  // fresh snapshot — checks every head and that no event id is recorded, seeing every
  // writer that held those locks before committed.
  `create or replace function events_append_check(
     stream_ids text[], versions int8[], hashes text[], event_ids uuid[]
   ) returns boolean language plpgsql volatile set search_path from current as $$
   begin
     perform pg_advisory_xact_lock(key) from (
       select distinct hashtextextended(s.stream_id, 0) as key
       from unnest(stream_ids) as s(stream_id) order by key
     ) as keys;
     return not exists (
       select 1 from unnest(stream_ids, versions, hashes) as x(stream_id, version, hash)
       left join lateral (
         select e.stream_version, e.hash from events e where e.stream_id = x.stream_id
         order by e.stream_version desc limit 1
       ) as h on true
       where coalesce(h.stream_version, 0) <> x.version
         or (x.version > 0 and h.hash <> decode(x.hash, 'hex'))
     ) and not exists (select 1 from events where event_id = any(event_ids));
   end $$`,
  `comment on table events is
    'Append-only log of domain events: the only source of truth of the orchestrator. '
    'Never update or delete rows. Read in global order with '
    'WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) '
    'ORDER BY transaction_id, global_position.'`,
  `comment on column events.global_position is
    'Position in the whole log, from a sequence: unique and increasing in insert order, '
    'but NOT commit order; it may have holes (rolled back inserts).'`,
  `comment on column events.stream_id is
    'Stream the event belongs to, e.g. job-<id>, robot-<id>, schedule-<id>, workflow-<id>.'`,
  `comment on column events.stream_version is
    '1-based version of the event within its stream, without holes.'`,
  `comment on column events.event_id is
    'Unique id of the event (UUID); appending the same ids again is a no-op.'`,
  `comment on column events.type is
    'Dotted lower case event type, past tense, e.g. job.queued.'`,
  `comment on column events.data is 'Event payload (JSON object).'`,
  `comment on column events.metadata is
    'Causation, correlation and actor of the event (JSON object).'`,
  `comment on column events.recorded_at is 'Database time of the appending transaction.'`,
  `comment on column events.transaction_id is
    'Id of the appending transaction. Rows of one stream have increasing ids with their '
    'versions; (transaction_id, global_position) is the gap-safe global order.'`,
  `comment on column events.hash is
    'SHA-256 over the hash of the previous event of the stream (32 zero bytes for version 1) '
    'and the UTF-8 of the RFC 8785 canonical JSON of '
    '[stream_id, stream_version, event_id, type, data, metadata] (README, event log).'`,
];

/**
 * Creates the `events` table, its indexes and column comments if missing. Safe to run on
 * every start and from several processes at once (a transaction-level advisory lock
 * serialises them). Objects are created in the first schema of the `search_path`.
 *
 * A table from before the hash chain gets its `hash` column: the hashes of its rows are
 * computed from their stored content, stream by stream, then the column is made
 * `NOT NULL`.
 *
 * @param client Where to create the table.
 * @returns When the table is ready.
 * @throws {Error} The driver's error when a statement fails; nothing is changed then.
 */
export async function migrateEventsSchema(client: SqlClient): Promise<void> {
  await client.transaction(async (tx) => {
    await tx.query("select pg_advisory_xact_lock($1::int8)", [MIGRATION_LOCK_KEY]);
    for (const statement of EVENTS_SCHEMA_STATEMENTS) await tx.query(statement);
    for (const statement of SNAPSHOT_SCHEMA_STATEMENTS) await tx.query(statement);
    for (const statement of SEALED_HEADS_SCHEMA_STATEMENTS) await tx.query(statement);
    const [column] = await tx.query<{ not_null: boolean }>(
      `select attnotnull as not_null from pg_attribute
       where attrelid = 'events'::regclass and attname = 'hash'`,
    );
    if (!column.not_null) {
      await backfillHashes(tx);
      await tx.query("alter table events alter column hash set not null");
    }
  });
}

/** Rows read to backfill a stream's hashes. */
type BackfillRow = Omit<EventRecordRow, "recorded_at"> & { hash: string | null };

/**
 * Computes the missing hashes of streams written before the hash chain existed, over the
 * content as stored (jsonb as it reads back). Rows that already have a hash keep it, and
 * the chain continues from the stored one.
 */
async function backfillHashes(tx: SqlTx): Promise<void> {
  const streams = await tx.query<{ stream_id: string }>(
    "select distinct stream_id from events where hash is null",
  );
  for (const { stream_id } of streams) {
    const rows = await tx.query<BackfillRow>(
      `select global_position, stream_id, stream_version, event_id, type, data, metadata,
         encode(hash, 'hex') as hash
       from events where stream_id = $1 order by stream_version`,
      [stream_id],
    );
    let previous = GENESIS_HASH;
    for (const row of rows) {
      if (row.hash === null) {
        const hash = eventHash(previous, {
          streamId: row.stream_id,
          streamVersion: row.stream_version,
          eventId: row.event_id,
          type: row.type,
          data: row.data,
          metadata: row.metadata,
        });
        await tx.query(
          "update events set hash = decode($1, 'hex') where global_position = $2::int8",
          [hash, row.global_position],
        );
        row.hash = hash;
      }
      previous = row.hash;
    }
  }
}
