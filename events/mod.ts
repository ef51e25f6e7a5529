/**
 * The event store: the append-only log that is the orchestrator's only source of truth.
 *
 * Open it with {@linkcode openEventStore} (PostgreSQL or embedded PGlite), append with
 * optimistic concurrency, read streams or the gap-safe global log, and follow the log
 * with {@linkcode subscribeAll}. Every event carries a SHA-256 hash chained to its
 * stream's previous event, and `seal()` records every stream's head (see `audit/`).
 *
 * @example
 * ```ts
 * import { openEventStore, subscribeAll } from "./mod.ts";
 * const store = await openEventStore({ dataDir: "memory://" });
 * const { events } = await store.append([{
 *   streamId: "job-1",
 *   expectedVersion: 0,
 *   events: [{ type: "job.queued", data: { workflowId: "w-1" } }],
 * }]);
 * const sub = subscribeAll(store, { onEvents: (batch) => console.log(batch.length) });
 * await sub.waitFor(events[0].globalPosition);
 * await sub.close();
 * await store.close();
 * ```
 *
 * @module
 */

export {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type JsonObject,
  type NewEvent,
  type ReadAllOptions,
  type RecordedEvent,
  type StreamAppend,
  WrongExpectedVersionError,
} from "./event_store.ts";
export type { ListenOptions, SqlClient, SqlTx } from "./sql_client.ts";
export { createPgliteClient, type PgliteClientOptions } from "./pglite_client.ts";
export { createPostgresClient, type PostgresClientOptions } from "./postgres_client.ts";
export { EVENTS_SCHEMA_STATEMENTS, migrateEventsSchema } from "./schema.ts";
export {
  type AppendObservation,
  createSqlEventStore,
  EVENTS_CHANNEL,
  type SqlEventStore,
  type SqlEventStoreOptions,
} from "./sql_event_store.ts";
export {
  subscribeAll,
  type SubscribeAllOptions,
  type Subscription,
  type SubscriptionSource,
  type WaitOptions,
} from "./subscription.ts";
export { openEventStore, type OpenEventStoreOptions } from "./open_store.ts";
export { subscribeDirect } from "./direct_subscription.ts";
export type { ScanFormat, ScanLogOptions } from "./_scan_log.ts";
export {
  createSnapshotStore,
  type ReplayCheckpoint,
  SNAPSHOT_SCHEMA_STATEMENTS,
  type SnapshotStore,
  type StreamSnapshot,
} from "./snapshot_store.ts";
export {
  ARCHIVE_EVENT_TYPE,
  type ArchiveCut,
  archiveStreams,
  type ArchiveStreamsOptions,
  type ArchiveStreamsResult,
} from "./archive_streams.ts";
export { type CoveredHead, fullScanHeads, type ScannedHead } from "./_sealed_heads.ts";
export { DEFAULT_MAX_EVENT_BYTES, EVENT_TYPE_PATTERN } from "./_validate_append.ts";
export { canonicalJson } from "./canonical_json.ts";
export { isStoreUnavailable } from "./store_unavailable.ts";
export {
  canonicalEventContent,
  type ChainedEvent,
  compareCodePoints,
  eventHash,
  GENESIS_HASH,
  type HashedContent,
  headsHash,
  HeadsHasher,
  type ReadChainOptions,
  type Seal,
  SEAL_EVENT_TYPE,
  SEAL_HEADS_EVENT_TYPE,
  SEAL_STREAM,
  type StreamHead,
} from "./hash_chain.ts";
