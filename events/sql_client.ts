/**
 * The narrow SQL port the event store is written against. Adapters (PGlite, postgres.js)
 * run the SAME SQL text, with `$1`-style placeholders, and agree on how values come back.
 *
 * @module
 */

/**
 * Runs statements inside an open transaction.
 *
 * Value mapping every adapter guarantees, both ways:
 * - `int8`/`bigint` ↔ JS `number` (safe up to 2^53; global positions stay far below),
 * - `jsonb` ↔ plain JS objects (pass objects, never pre-stringified JSON),
 * - `timestamptz` → `Date`, `uuid`/`text` ↔ `string`, `text[]` ← JS array of strings,
 * - `xid8` and other types without a mapping come back as `string`.
 */
export interface SqlTx {
  /**
   * Runs one statement (no `;`-separated scripts) and returns its rows.
   *
   * @param text SQL with `$1`, `$2`… placeholders.
   * @param params Values of the placeholders, in order.
   * @returns The rows, as objects keyed by column name.
   * @throws {Error} The driver's error (with a Postgres `code` such as `23505`) when the
   *   statement fails.
   */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

/** Options of {@linkcode SqlClient.listen}. */
export interface ListenOptions {
  /**
   * Called each time the listener is (re)established, including after the adapter
   * reconnected a lost LISTEN connection. Notifications sent while it was down are lost,
   * so callers catch up here.
   */
  onListen?: () => void;
}

/** A connection (or pool) to PostgreSQL or PGlite. */
export interface SqlClient extends SqlTx {
  /**
   * Runs `fn` in one transaction (READ COMMITTED): commits when it resolves, rolls back
   * when it rejects.
   *
   * @returns What `fn` resolved to.
   * @throws {Error} What `fn` threw, after the rollback, or the commit's error.
   */
  transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T>;
  /**
   * Subscribes to `NOTIFY` on a channel. Absent when the backend cannot listen.
   * Adapters re-listen by themselves after a lost connection.
   *
   * @param channel Channel name, e.g. `events`.
   * @param onNotify Called with each notification's payload.
   * @returns A function that stops listening.
   */
  listen?(
    channel: string,
    onNotify: (payload: string) => void,
    options?: ListenOptions,
  ): Promise<() => Promise<void>>;
  /** Closes every connection. Pending queries finish first. */
  close(): Promise<void>;
  /**
   * True when the client runs one transaction at a time, to the end, like PGlite (a single
   * connection in process; one process per data directory): writers then never contend, and
   * the store skips its per-stream advisory locks, a statement per append.
   * @default false
   */
  readonly exclusive?: boolean;
}
