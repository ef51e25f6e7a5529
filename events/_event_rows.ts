/**
 * Rows of the `events` table and their mapping to {@linkcode RecordedEvent}.
 *
 * @module
 */

import type { RecordedEvent } from "./event_store.ts";
import type { EventRow } from "./_validate_append.ts";

/** Columns selected for a {@linkcode RecordedEvent}. */
export const COLUMNS = "global_position, stream_id, stream_version, event_id, type, data, " +
  "metadata, recorded_at";

/** Row of the `events` table as the adapters return it. */
export interface EventRecordRow {
  global_position: number;
  stream_id: string;
  stream_version: number;
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  recorded_at: Date;
}

/** Maps a row to the public event shape. */
export function toRecorded(row: EventRecordRow): RecordedEvent {
  return {
    globalPosition: row.global_position,
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    eventId: row.event_id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
  };
}

/** Recorded events matching `rows` by event id, in the order of `rows`. */
export function inOrder(rows: EventRow[], recorded: EventRecordRow[]): RecordedEvent[] {
  const byId = new Map(recorded.map((row) => [row.event_id, row]));
  return rows.map((row) => toRecorded(byId.get(row.eventId)!));
}
