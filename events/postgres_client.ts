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
}

type Sql = postgres.Sql<Record<string, never>>;

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
  const connection: Record<string, string> = {
    application_name: options.applicationName ?? "orchestrator-events",
  };
  if (schema !== undefined) connection.search_path = schema;
  const sql: Sql = postgres(options.url, {
    max: options.max ?? 10,
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
  try {
    if (schema !== undefined) await sql.unsafe(`create schema if not exists ${schema}`);
  } catch (error) {
    await sql.end();
    throw error;
  }

  const query = async <T>(tx: Sql, text: string, params: unknown[] = []) =>
    (await tx.unsafe(text, params as postgres.ParameterOrJSON<never>[])) as unknown as T[];

  return {
    query: <T>(text: string, params?: unknown[]) => query<T>(sql, text, params),
    // A transaction on a reserved connection, with BEGIN pipelined ahead of the first
    // statements instead of awaited on its own (what `sql.begin` does): one round trip
    // fewer per transaction, so an append is three (statements, insert, COMMIT). The
    // statements are queued behind BEGIN on the same connection, so they run inside it.
    async transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
      const connection = await sql.reserve();
      try {
        const begin = connection.unsafe("begin").execute();
        // A failed BEGIN fails the statements behind it; its own rejection is awaited below.
        begin.catch(() => {});
        let result: T;
        try {
          result = await fn({
            query: <R>(text: string, params?: unknown[]) =>
              query<R>(connection as unknown as Sql, text, params),
          });
          await begin;
        } catch (error) {
          await connection.unsafe("rollback").catch(() => {});
          throw error;
        }
        await connection.unsafe("commit");
        return result;
      } finally {
        connection.release();
      }
    },
    async listen(channel: string, onNotify: (payload: string) => void, opts?: ListenOptions) {
      // postgres.js keeps one dedicated LISTEN connection; when it is lost it reconnects,
      // re-runs LISTEN and calls onlisten again.
      const { unlisten } = await sql.listen(channel, onNotify, () => opts?.onListen?.());
      return async () => {
        await unlisten();
      };
    },
    close: () => sql.end(),
  };
}
