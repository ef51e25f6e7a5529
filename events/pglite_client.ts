/**
 * {@linkcode SqlClient} adapter for PGlite (Postgres compiled to WebAssembly, in process).
 *
 * @module
 */

import { PGlite, types } from "@electric-sql/pglite";
import type { ListenOptions, SqlClient, SqlTx } from "./sql_client.ts";
import { quoteSchemaName } from "./_schema_name.ts";

/** Options of {@linkcode createPgliteClient}. */
export interface PgliteClientOptions {
  /**
   * Directory of the database files (created if missing), or `memory://` for a database
   * that lives only as long as the client. One process at a time may open a directory.
   */
  dataDir: string;
  /**
   * Schema to create if missing and put first on the `search_path`.
   * @default undefined (the `public` schema)
   */
  schema?: string;
}

/**
 * Opens PGlite and wraps it as a {@linkcode SqlClient}.
 *
 * PGlite is a single connection: transactions (and queries) run one at a time, in call
 * order, so concurrent appends queue up instead of conflicting on locks. `int8` comes
 * back as a JS number (PGlite would return a `bigint` above 2^53).
 *
 * @example Open an in-memory database
 * ```ts
 * import { createPgliteClient } from "./pglite_client.ts";
 * const client = await createPgliteClient({ dataDir: "memory://" });
 * const rows = await client.query<{ one: number }>("select $1::int8 as one", [1]);
 * await client.close();
 * ```
 *
 * @param options Where the data lives and which schema to use.
 * @returns An open client; call `close()` when done.
 * @throws {TypeError} When `schema` is not a plain lower case identifier.
 */
export async function createPgliteClient(options: PgliteClientOptions): Promise<SqlClient> {
  const schema = options.schema === undefined ? undefined : quoteSchemaName(options.schema);
  if (!options.dataDir.startsWith("memory://")) {
    await Deno.mkdir(options.dataDir, { recursive: true });
  }
  const db = await PGlite.create(options.dataDir, {
    parsers: { [types.INT8]: (value: string) => Number(value) },
  });
  try {
    if (schema !== undefined) {
      await db.query(`create schema if not exists ${schema}`);
      await db.query(`set search_path to ${schema}`);
    }
  } catch (error) {
    await db.close();
    throw error;
  }

  const query = async <T>(tx: Pick<PGlite, "query">, text: string, params?: unknown[]) =>
    (await tx.query<T>(text, params)).rows;

  return {
    query: <T>(text: string, params?: unknown[]) => query<T>(db, text, params),
    transaction: <T>(fn: (tx: SqlTx) => Promise<T>) =>
      db.transaction((tx) =>
        fn({ query: <R>(text: string, params?: unknown[]) => query<R>(tx, text, params) })
      ),
    async listen(channel: string, onNotify: (payload: string) => void, opts?: ListenOptions) {
      const unlisten = await db.listen(channel, onNotify);
      opts?.onListen?.();
      return async () => await unlisten();
    },
    close: () => db.close(),
    exclusive: true,
  };
}
