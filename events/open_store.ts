/**
 * Opens the event store of the orchestrator: PostgreSQL when a URL is configured, else an
 * embedded PGlite database in the data directory.
 *
 * @module
 */

import { createPgliteClient } from "./pglite_client.ts";
import { createPostgresClient } from "./postgres_client.ts";
import { migrateEventsSchema } from "./schema.ts";
import type { SqlClient } from "./sql_client.ts";
import { createSqlEventStore, type SqlEventStore } from "./sql_event_store.ts";

/** Options of {@linkcode openEventStore}. */
export interface OpenEventStoreOptions {
  /**
   * PostgreSQL URL (`postgres://user@host:5432/db`). When set, the store uses that server.
   * @default undefined (PGlite in `${dataDir}/pglite`)
   */
  databaseUrl?: string;
  /**
   * Data directory of the orchestrator; PGlite keeps its files in `${dataDir}/pglite`.
   * `memory://` keeps an embedded database in memory only (tests).
   */
  dataDir: string;
  /**
   * Schema holding the `events` table, created if missing.
   * @default undefined (`public`)
   */
  schema?: string;
  /** postgres.js pool size (ignored by PGlite). @default 10 */
  maxConnections?: number;
  /** `application_name` of the Postgres connections. @default "orchestrator-events" */
  applicationName?: string;
  /**
   * `"transaction"` behind a transaction-mode pooler such as PgBouncer (see
   * `PostgresClientOptions.pooler`; ignored by PGlite).
   * @default "none"
   */
  pooler?: "none" | "transaction";
  /** Ids of events given without `eventId`. @default crypto.randomUUID */
  newId?: () => string;
  /** Whether appends send a `NOTIFY` (see `SqlEventStoreOptions.notify`). @default true */
  notify?: boolean;
  /**
   * Limit of one event's `data` plus `metadata` in bytes of UTF-8 JSON (see
   * `SqlEventStoreOptions.maxEventBytes`).
   * @default 1048576 (1 MiB)
   */
  maxEventBytes?: number;
  /**
   * Whether to create or upgrade the `events` table. Read-only tools (`deno task verify`)
   * turn it off so that they change nothing.
   * @default true
   */
  migrate?: boolean;
}

/**
 * Connects, creates the `events` table if missing, and returns the store, which owns the
 * connection (`close()` closes it).
 *
 * @example
 * ```ts
 * import { openEventStore } from "./open_store.ts";
 * const store = await openEventStore({
 *   databaseUrl: Deno.env.get("DATABASE_URL"),
 *   dataDir: "data",
 * });
 * console.log(await store.currentPosition());
 * await store.close();
 * ```
 *
 * @param options Where the database is.
 * @returns The open store.
 * @throws {TypeError} When `schema` is not a plain lower case identifier.
 * @throws {RangeError} When `maxEventBytes` is not an integer >= 1.
 * @throws {Error} The driver's error when the database cannot be opened or migrated.
 */
export async function openEventStore(options: OpenEventStoreOptions): Promise<SqlEventStore> {
  const { databaseUrl, dataDir, schema } = options;
  const client: SqlClient = databaseUrl
    ? await createPostgresClient({
      url: databaseUrl,
      schema,
      max: options.maxConnections,
      applicationName: options.applicationName,
      pooler: options.pooler,
    })
    : await createPgliteClient({
      dataDir: dataDir.startsWith("memory://") ? dataDir : `${dataDir}/pglite`,
      schema,
    });
  try {
    if (options.migrate ?? true) await migrateEventsSchema(client);
    return createSqlEventStore(client, {
      newId: options.newId,
      notify: options.notify,
      maxEventBytes: options.maxEventBytes,
    });
  } catch (error) {
    await client.close();
    throw error;
  }
}
