/**
 * What an audit reads the log through.
 *
 * @module
 */

import type { SqlEventStore } from "../events/mod.ts";

/**
 * Where `verifyLog` reads the log: any event store from `events/` (`openEventStore`, or
 * `createSqlEventStore` over your own SQL client). Only `readChain` is used; the audit
 * writes nothing.
 */
export type AuditSource = Pick<SqlEventStore, "readChain">;
