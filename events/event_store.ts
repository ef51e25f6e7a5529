/**
 * The event store contract: the only source of truth of the orchestrator.
 *
 * Streams are named `job-<job_id>`, `robot-<robot_id>`, `schedule-<id>`, `workflow-<id>`.
 * Event types are dotted lower case, past tense (`job.queued`, `robot.connected`).
 * Stream versions start at 1; a stream that has no events has version 0.
 *
 * @module
 */
import type { SqlTx } from "./sql_client.ts";

/** JSON object as stored in the `data` and `metadata` jsonb columns. */
export type JsonObject = Record<string, unknown>;

/** An event to append. */
export interface NewEvent {
  /** Dotted lower case, past tense, e.g. `job.dispatched`. */
  type: string;
  /** Event payload; must be a JSON object without `\u0000` or lone surrogates. */
  data: JsonObject;
  /** Optional metadata (causation, correlation, actor). */
  metadata?: JsonObject;
  /**
   * Unique id of the event (UUID). When the caller sets it, appending the same id again is
   * a no-op that returns the original positions (idempotent append).
   * @default crypto.randomUUID()
   */
  eventId?: string;
}

/**
 * One stream's part of an atomic append.
 *
 * `expectedVersion` is the stream's current version the caller decided on: `0` means the
 * stream must not exist yet; `"any"` skips the check.
 */
export interface StreamAppend {
  /** The stream to append to, e.g. `job-<job_id>`; at most once per append. */
  streamId: string;
  /** The stream's version before this append (0: new stream), or `"any"`. */
  expectedVersion: number | "any";
  /** The events to append, at least one; they get the next versions in this order. */
  events: NewEvent[];
}

/** An event as recorded in the `events` table. */
export interface RecordedEvent {
  /**
   * Position in the whole log (bigserial); unique, increasing with insert order. It is
   * not the commit order: `readAll` orders by (transaction, position), so positions it
   * returns are not always increasing. Use it as an opaque `after` cursor.
   */
  globalPosition: number;
  /** The stream of the event. */
  streamId: string;
  /** 1-based version within the stream. */
  streamVersion: number;
  /** Unique id of the event (lower case UUID). */
  eventId: string;
  /** Dotted lower case event type. */
  type: string;
  /** Event payload. */
  data: JsonObject;
  /** Event metadata (`{}` when none was given). */
  metadata: JsonObject;
  /** Database time at which the event was recorded. */
  recordedAt: Date;
}

/** Options of {@linkcode EventStore.append}. */
export interface AppendOptions {
  /**
   * Runs first inside the append's transaction, with its connection (a `SqlTx` of the SQL
   * stores); when it throws, the transaction rolls back and `append` rejects with its
   * error. A leader's fencing check (`engine/leader_election.ts`) uses it, so that the
   * check and the write commit together or not at all.
   */
  guard?: (tx: SqlTx) => Promise<void>;
}

/** Result of an append: the new version of each stream and the events as recorded. */
export interface AppendResult {
  /** New version of each stream written, keyed by stream id. */
  versions: Record<string, number>;
  /** The recorded events, in the order given (original ones on an idempotent replay). */
  events: RecordedEvent[];
}

/** Options of {@linkcode EventStore.readAll}. */
export interface ReadAllOptions {
  /** Return events after this global position (exclusive). @default 0 */
  after?: number;
  /** Maximum number of events. @default 1000 */
  limit?: number;
  /** Only events of these stream ids (exact match). */
  streamId?: string;
  /** Rejects with the signal's reason when aborted before or after the query. */
  signal?: AbortSignal;
}

/** The event store. Implemented once over a {@linkcode SqlClient} for PGlite and Postgres. */
export interface EventStore {
  /**
   * Appends events to one or several streams atomically.
   * @throws {WrongExpectedVersionError} when a stream's version differs from the expected
   *   one; nothing is written.
   * @throws {TypeError} on an empty append or an invalid event.
   * @throws What `options.guard` threw; nothing is written.
   */
  append(writes: StreamAppend[], options?: AppendOptions): Promise<AppendResult>;
  /**
   * Reads one stream from a version (inclusive, default 1), in version order.
   * @throws {RangeError} when `fromVersion` is not an integer >= 1.
   */
  readStream(streamId: string, options?: { fromVersion?: number }): Promise<RecordedEvent[]>;
  /**
   * Reads events of all streams in global order after a position. Never returns an event
   * before an earlier-ordered one that is not yet committed (gap-safe).
   * @throws {RangeError} when `limit` is not an integer >= 1, or `after` is not 0 or the
   *   position of a recorded event.
   */
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Closes the underlying connection(s). */
  close(): Promise<void>;
}

/** Thrown when a stream's current version is not the expected one. Nothing was written. */
export class WrongExpectedVersionError extends Error {
  /** Always `"WrongExpectedVersionError"`. */
  override name = "WrongExpectedVersionError";
  /** The stream whose version differed. */
  readonly streamId: string;
  /** The version the caller expected. */
  readonly expected: number;
  /** The version the stream actually has. */
  readonly actual: number;
  /**
   * Builds the error; its message names the stream and both versions.
   * @param streamId The stream whose version differed.
   * @param expected The version the caller expected.
   * @param actual The version the stream actually has.
   */
  constructor(streamId: string, expected: number, actual: number) {
    super(
      `Stream ${streamId} is at version ${actual}, the append expected version ${expected}`,
    );
    this.streamId = streamId;
    this.expected = expected;
    this.actual = actual;
  }
}
