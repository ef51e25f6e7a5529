/**
 * {@linkcode SqlClient} adapter for a PostgreSQL server, through postgres.js.
 *
 * @module
 */

import postgres from "postgres";
import type { ListenOptions, SqlClient, SqlTx } from "./sql_client.ts";
import { quoteSchemaName } from "./_schema_name.ts";

/** Options of {@linkcode createPostgresClient}. */
export interface PostgresClientOptions {
  /** Connection URL, e.g. `postgres://postgres@127.0.0.1:5432/test`. */
  url: string;
  /**
   * Schema to create if missing and set as the `search_path` of every connection (the
   * LISTEN connection included). Tests use a fresh one to stay isolated.
   * @default undefined (the server's default `search_path`)
   */
  schema?: string;
  /**
   * Maximum number of pooled connections, not counting the one LISTEN connection.
   * @default 10
   */
  max?: number;
  /**
   * `application_name` of the connections, shown in `pg_stat_activity`.
   * @default "orchestrator-events"
   */
  applicationName?: string;
  /**
   * `"transaction"` when a transaction-mode pooler (PgBouncer `pool_mode=transaction`,
   * Supavisor, RDS Proxy) sits in front of the server: no session state survives a
   * transaction there. Then statements are not prepared (`prepare: false`), every
   * statement runs in its own transaction (postgres.js sends Parse/Describe and
   * Bind/Execute of a parameterised statement as two round trips, which a pooler may send to
   * two server connections outside a transaction), `schema` is set per transaction with
   * `set_config('search_path', …, true)` instead of as a startup parameter, and the client
   * has no `listen` (LISTEN needs a session): subscribers poll.
   * @default "none"
   */
  pooler?: "none" | "transaction";
}

type Sql = postgres.Sql<Record<string, never>>;

/** A LISTEN of the client, kept to be moved to a new pool. */
interface ListenEntry {
  channel: string;
  onNotify: (payload: string) => void;
  opts?: ListenOptions;
  stop?: () => Promise<void>;
}

/**
 * Connects to PostgreSQL and wraps the pool as a {@linkcode SqlClient}.
 *
 * `int8` is parsed to a JS number, `jsonb` parameters are sent as JSON of the objects
 * given (never pass a pre-stringified JSON string: postgres.js would store a jsonb string,
 * postgres.js #1139), and server notices are not logged.
 *
 * @example Connect to the test database
 * ```ts
 * import { createPostgresClient } from "./postgres_client.ts";
 * const client = await createPostgresClient({ url: "postgres://postgres@127.0.0.1/test" });
 * const rows = await client.query<{ n: number }>("select $1::int8 as n", [42]);
 * await client.close();
 * ```
 *
 * @param options URL, schema and pool size.
 * @returns An open client; call `close()` when done.
 * @throws {TypeError} When `schema` is not a plain lower case identifier.
 * @throws {Error} postgres.js's error when the server cannot be reached or the schema
 *   cannot be created.
 */
export async function createPostgresClient(
  options: PostgresClientOptions,
): Promise<SqlClient> {
  const schema = options.schema === undefined ? undefined : quoteSchemaName(options.schema);
  const pooled = options.pooler === "transaction";
  const connection: Record<string, string> = {
    application_name: options.applicationName ?? "orchestrator-events",
  };
  if (schema !== undefined && !pooled) connection.search_path = schema;
  const connect = (): Sql =>
    postgres(options.url, {
      max: options.max ?? 10,
      prepare: !pooled,
      onnotice: () => {},
      connection,
      types: {
        int8: {
          to: 20,
          from: [20],
          serialize: (value: number | bigint) => String(value),
          parse: (value: string) => Number(value),
        },
      },
    }) as unknown as Sql;
  let sql = connect();
  try {
    if (schema !== undefined) await sql.unsafe(`create schema if not exists ${schema}`);
  } catch (error) {
    await sql.end();
    throw error;
  }

  // postgres.js 3.4.9 defers small writes with setImmediate; when the server closes the
  // connection first, the deferred write runs on a null socket and throws where no caller
  // can catch it (porsager/postgres#1154, #1208; denoland/deno#34667), or on a socket the
  // server ended, whose EPIPE error Deno's node:net raises as an unhandled rejection (seen
  // when the server crashed under load, `pg_ctl stop -m immediate`); either would end the
  // process, and leaves that connection unable to write again. Such an error is stopped
  // here and the whole pool is replaced: the queries of the old one fail with
  // CONNECTION_ENDED (callers see an unreachable store and retry), LISTENs move over.
  const listens = new Set<ListenEntry>();
  const listenOn = async (pool: Sql, entry: ListenEntry) => {
    const { unlisten } = await pool.listen(
      entry.channel,
      entry.onNotify,
      () => entry.opts?.onListen?.(),
    );
    entry.stop = unlisten;
  };
  const onUncaught = (event: ErrorEvent | PromiseRejectionEvent) => {
    const error = event instanceof ErrorEvent ? event.error : event.reason;
    if (isConnectionReset(error)) {
      // The server reset a connection (restart, crash): postgres.js already fails that
      // connection's queries and reconnects; Deno's node:net also raises the socket's
      // ECONNRESET as an unhandled rejection, which must not end the process.
      event.preventDefault();
      console.error(`PostgreSQL connection reset (${error.message}); postgres.js reconnects`);
      return;
    }
    if (!isClosedSocketWrite(error)) return;
    event.preventDefault();
    console.error(
      "postgres.js wrote to a closed or ended connection (porsager/postgres#1154); " +
        "replacing the pool",
    );
    const old = sql;
    sql = connect();
    old.end({ timeout: 0 }).catch(() => {});
    for (const entry of listens) listenOn(sql, entry).catch(() => {});
  };
  globalThis.addEventListener("error", onUncaught);
  globalThis.addEventListener("unhandledrejection", onUncaught);

  // What runs on the pool now, to let it finish before `close()` ends the connections.
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    inFlight.add(promise);
    const settled = () => inFlight.delete(promise);
    promise.then(settled, settled);
    return promise;
  };

  const query = async <T>(tx: Sql, text: string, params: unknown[] = []) =>
    (await tx.unsafe(text, params as postgres.ParameterOrJSON<never>[])) as unknown as T[];

  const transaction = <T>(fn: (tx: SqlTx) => Promise<T>) =>
    track(sql.begin(async (tx) => {
      if (pooled && schema !== undefined) {
        await tx.unsafe("select set_config('search_path', $1, true)", [schema]);
      }
      return await fn({
        query: <R>(text: string, params?: unknown[]) =>
          query<R>(tx as unknown as Sql, text, params),
      });
    }) as Promise<T>);

  const client: SqlClient = {
    query: <T>(text: string, params?: unknown[]) =>
      pooled ? transaction((tx) => tx.query<T>(text, params)) : track(query<T>(sql, text, params)),
    transaction,
    async listen(channel: string, onNotify: (payload: string) => void, opts?: ListenOptions) {
      // postgres.js keeps one dedicated LISTEN connection; when it is lost it reconnects,
      // re-runs LISTEN and calls onlisten again.
      const entry: ListenEntry = { channel, onNotify, opts };
      await listenOn(sql, entry);
      listens.add(entry);
      return async () => {
        listens.delete(entry);
        await entry.stop?.();
      };
    },
    // postgres.js's end() waits for each connection's current query, but a connection
    // that died in the middle of one (the server restarted or crashed) keeps that query as
    // its current one until it is used again, so end() would wait forever, with nothing
    // left to wake it (a process's event loop ran dry in the middle of `close()`). The
    // pool's queries are awaited here instead, then end() gets a second to close the
    // connections before it drops them.
    async close() {
      globalThis.removeEventListener("error", onUncaught);
      globalThis.removeEventListener("unhandledrejection", onUncaught);
      await Promise.allSettled([...inFlight]);
      await sql.end({ timeout: CLOSE_TIMEOUT_SECONDS });
    },
  };
  if (pooled) delete client.listen; // no session for LISTEN behind a transaction pooler
  return client;
}

/**
 * Seconds `close()` lets postgres.js close idle connections before it drops them (after
 * every query of the pool has settled).
 */
const CLOSE_TIMEOUT_SECONDS = 1;

/**
 * A socket read or write on a connection the peer reset or closed (`ECONNRESET`, `EPIPE`),
 * raised by Deno's node:net as an unhandled rejection when the server goes away (seen in
 * `tests/faults/postgres_restart_test.ts`: it ended the orchestrator). The node:net sockets
 * of this process are postgres.js's.
 */
function isConnectionReset(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const { code, syscall } = error as { code?: unknown; syscall?: unknown };
  return (code === "ECONNRESET" || code === "EPIPE") &&
    (syscall === "read" || syscall === "write");
}

/**
 * The uncatchable errors of postgres.js's deferred write on a closed socket (a TypeError)
 * or on one the server ended (EPIPE).
 */
function isClosedSocketWrite(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const closed = error instanceof TypeError && /reading 'write'/.test(error.message);
  const ended = /ended by the other party/.test(error.message);
  return (closed || ended) && /postgres[\\/].*connection\.js/.test(error.stack ?? "") &&
    /nextWrite/.test(error.stack ?? "");
}
