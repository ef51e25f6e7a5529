/** A Postgres schema name we create and quote safely: lower case letters, digits, `_`. */
export const SCHEMA_NAME_PATTERN: RegExp = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks a schema name before it is put in SQL text.
 *
 * @param schema The name to check.
 * @returns The name, double-quoted for SQL.
 * @throws {TypeError} When the name does not match {@linkcode SCHEMA_NAME_PATTERN}.
 */
export function quoteSchemaName(schema: string): string {
  if (!SCHEMA_NAME_PATTERN.test(schema)) {
    throw new TypeError(
      `Schema name must match ${SCHEMA_NAME_PATTERN}, got ${JSON.stringify(schema)}`,
    );
  }
  return `"${schema}"`;
}
