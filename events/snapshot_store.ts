/**
 * Snapshots of folded streams: a cache that bounds the work of loading a long stream (a
 * robot's stream grows by two events per job it runs). Never a source of truth: deleting
 * every snapshot changes no result, only the time to load.
 *
 * Table `actor_snapshots`, one row per stream: the state folded from versions 1..n, the
 * id of event n (checked against the log when loading, so a snapshot that does not match
 * the log is never used), and the version of the machine that folded it (a snapshot of
 * another machine version is ignored and replaced).
 *
 * @module
 */

import type { SqlClient } from "./sql_client.ts";

/** Statements creating the snapshot table (idempotent); run by `migrateEventsSchema`. */
export const SNAPSHOT_SCHEMA_STATEMENTS: readonly string[] = [
  `create table if not exists actor_snapshots (
    stream_id text primary key,
    machine_version text not null,
    stream_version bigint not null check (stream_version > 0),
    event_id uuid not null,
    state jsonb not null,
    taken_at timestamptz not null default now()
  )`,
  `comment on table actor_snapshots is
    'Cache of folded stream states (the log is the truth: rows may be deleted at any time). '
    'state is the fold of versions 1..stream_version of stream_id by machine_version; '
    'event_id is the id of that last event.'`,
];

/** One stream's snapshot. */
export interface StreamSnapshot {
  streamId: string;
  /** Version of the machine that folded `state` (see `machineVersion`). */
  machineVersion: string;
  /** Last stream version folded into `state`. */
  streamVersion: number;
  /** Event id of that version, to check the snapshot against the log. */
  eventId: string;
  /** The folded state, as JSON. */
  state: Record<string, unknown>;
}

/** Reads and writes snapshots. */
export interface SnapshotStore {
  /** The stream's snapshot taken by `machineVersion`, or null when there is none. */
  load(streamId: string, machineVersion: string): Promise<StreamSnapshot | null>;
  /**
   * Saves a snapshot unless one of the same machine version and a later stream version
   * is stored already.
   */
  save(snapshot: StreamSnapshot): Promise<void>;
  /** Deletes every snapshot; returns how many there were. */
  clear(): Promise<number>;
}

/** The snapshot store over a client whose `actor_snapshots` table exists. */
export function createSnapshotStore(client: SqlClient): SnapshotStore {
  return {
    async load(streamId, machineVersion) {
      const [row] = await client.query<{
        stream_version: number;
        event_id: string;
        state: Record<string, unknown>;
      }>(
        `select stream_version, event_id, state from actor_snapshots
         where stream_id = $1 and machine_version = $2`,
        [streamId, machineVersion],
      );
      if (!row) return null;
      return {
        streamId,
        machineVersion,
        streamVersion: row.stream_version,
        eventId: row.event_id,
        state: row.state,
      };
    },

    async save(snapshot) {
      if (!Number.isSafeInteger(snapshot.streamVersion) || snapshot.streamVersion < 1) {
        throw new RangeError(
          `streamVersion must be an integer >= 1, got ${snapshot.streamVersion}`,
        );
      }
      await client.query(
        `insert into actor_snapshots (stream_id, machine_version, stream_version, event_id, state)
         values ($1, $2, $3::int8, $4::uuid, $5::text::jsonb)
         on conflict (stream_id) do update set machine_version = excluded.machine_version,
           stream_version = excluded.stream_version, event_id = excluded.event_id,
           state = excluded.state, taken_at = now()
         where actor_snapshots.machine_version <> excluded.machine_version
           or actor_snapshots.stream_version < excluded.stream_version`,
        [
          snapshot.streamId,
          snapshot.machineVersion,
          snapshot.streamVersion,
          snapshot.eventId,
          JSON.stringify(snapshot.state),
        ],
      );
    },

    async clear() {
      const rows = await client.query<{ n: number }>(
        "with gone as (delete from actor_snapshots returning 1) select count(*)::int8 as n from gone",
      );
      return rows[0].n;
    },
  };
}
