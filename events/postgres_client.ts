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
  const sql: Sql = postgres(options.url, {
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
  try {
    if (schema !== undefined) await sql.unsafe(`create schema if not exists ${schema}`);
  } catch (error) {
    await sql.end();
    throw error;
  }

  const query = async <T>(tx: Sql, text: string, params: unknown[] = []) =>
    (await tx.unsafe(text, params as postgres.ParameterOrJSON<never>[])) as unknown as T[];

  const transaction = <T>(fn: (tx: SqlTx) => Promise<T>) =>
    sql.begin(async (tx) => {
      if (pooled && schema !== undefined) {
        await tx.unsafe("select set_config('search_path', $1, true)", [schema]);
      }
      return await fn({
        query: <R>(text: string, params?: unknown[]) =>
          query<R>(tx as unknown as Sql, text, params),
      });
    }) as Promise<T>;

  const client: SqlClient = {
    query: <T>(text: string, params?: unknown[]) =>
      pooled ? transaction((tx) => tx.query<T>(text, params)) : query<T>(sql, text, params),
    transaction,
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
  if (pooled) delete client.listen; // no session for LISTEN behind a transaction pooler
  return client;
}
