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
 * Table `replay_checkpoints`: start-up checkpoints, the whole folded state at a log
 * position (see `engine/startup_checkpoint.ts`), equally a cache.
 *
 * @module
 */

import { Buffer } from "node:buffer";
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
  `create table if not exists replay_checkpoints (
    code_version text not null,
    position bigint not null check (position > 0),
    event_id uuid not null,
    chunk int not null check (chunk >= 0),
    chunks int not null check (chunks > 0),
    sha256 text not null,
    data text not null,
    taken_at timestamptz not null default now(),
    primary key (code_version, position, chunk)
  )`,
  `comment on table replay_checkpoints is
    'Cache of the whole folded state at a log position (the log is the truth: rows may be '
    'deleted at any time). data (base64, split in chunks) is the state after every event up '
    'to and including position (whose event id is event_id), folded by code_version; '
    'sha256 is over the decoded bytes of all chunks.'`,
];

/** A start-up checkpoint: the whole folded state after the event at `position`. */
export interface ReplayCheckpoint {
  /** Version of the code (and configuration) that folded the state. */
  codeVersion: string;
  /** Global position of the last event folded into `data`. */
  position: number;
  /** Id of that event, to check the checkpoint against the log. */
  eventId: string;
  /** The serialised state. */
  data: Uint8Array;
}

/**
 * Bytes per stored chunk (a multiple of 3: each chunk is base64 on its own). Small rows
 * keep the driver from growing one large buffer piece by piece.
 */
const CHECKPOINT_CHUNK_BYTES = 768 * 1024;

async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Decodes base64 (characters outside the alphabet are skipped: the SHA-256 check finds it). */
function fromBase64(text: string): Uint8Array {
  return Buffer.from(text, "base64");
}

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
  /**
   * Replaces the stored start-up checkpoint (one is kept) by `checkpoint`, in one
   * transaction.
   * @throws {RangeError} When `position` is not an integer >= 1.
   */
  saveCheckpoint(checkpoint: ReplayCheckpoint): Promise<void>;
  /**
   * The latest checkpoint of `codeVersion` that still fits the log, or null: its event is
   * in the log at its position with the same id, no `audit.archived` event (streams moved
   * out of the log) comes after it in the log's order, every chunk is there and the bytes
   * match the recorded SHA-256.
   */
  loadCheckpoint(codeVersion: string): Promise<ReplayCheckpoint | null>;
  /** Deletes every start-up checkpoint; returns how many chunks there were. */
  clearCheckpoints(): Promise<number>;
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

    async saveCheckpoint({ codeVersion, position, eventId, data }) {
      if (!Number.isSafeInteger(position) || position < 1) {
        throw new RangeError(`position must be an integer >= 1, got ${position}`);
      }
      const sha256 = await sha256Hex(data);
      const chunks: string[] = [];
      for (let i = 0; i < data.length || i === 0; i += CHECKPOINT_CHUNK_BYTES) {
        chunks.push(toBase64(data.subarray(i, i + CHECKPOINT_CHUNK_BYTES)));
      }
      await client.transaction(async (tx) => {
        await tx.query("delete from replay_checkpoints");
        for (let i = 0; i < chunks.length; i++) {
          await tx.query(
            `insert into replay_checkpoints
               (code_version, position, event_id, chunk, chunks, sha256, data)
             values ($1, $2::int8, $3::uuid, $4::int4, $5::int4, $6, $7)`,
            [codeVersion, position, eventId, i, chunks.length, sha256, chunks[i]],
          );
        }
      });
    },

    async loadCheckpoint(codeVersion) {
      const [head] = await client.query<
        { position: number; event_id: string; chunks: number; sha256: string }
      >(
        `select c.position, c.event_id, c.chunks, c.sha256
         from replay_checkpoints c
         join events e on e.global_position = c.position and e.event_id = c.event_id
         where c.code_version = $1 and c.chunk = 0
           and not exists (
             select 1 from events a
             where a.stream_id = 'audit-seals' and a.type = 'audit.archived'
               and (a.transaction_id, a.global_position) > (e.transaction_id, e.global_position))
         order by c.position desc limit 1`,
        [codeVersion],
      );
      if (!head) return null;
      const rows = await client.query<{ chunk: number; data: string }>(
        `select chunk, data from replay_checkpoints
         where code_version = $1 and position = $2::int8 and sha256 = $3 order by chunk`,
        [codeVersion, head.position, head.sha256],
      );
      if (rows.length !== head.chunks || rows.some((r, i) => r.chunk !== i)) return null;
      const parts = rows.map((r) => fromBase64(r.data));
      const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        data.set(p, at);
        at += p.length;
      }
      if (await sha256Hex(data) !== head.sha256) return null;
      return { codeVersion, position: head.position, eventId: head.event_id, data };
    },

    async clearCheckpoints() {
      const rows = await client.query<{ n: number }>(
        `with gone as (delete from replay_checkpoints returning 1)
         select count(*)::int8 as n from gone`,
      );
      return rows[0].n;
    },
  };
}
