/**
 * Sealing the log on demand.
 *
 * @module
 */

import type { Seal, SqlEventStore } from "../events/mod.ts";

/**
 * Seals the log now: records the head of every stream in an `audit.sealed` event of
 * stream `audit-seals`, so that `verifyLog` catches events later deleted from the end of
 * a stream. Writes nothing when no stream but the seals changed since the last seal, and
 * returns that seal. Same as `store.seal()`; periodic sealing is the engine's.
 *
 * @example
 * ```ts
 * import { openEventStore } from "../events/mod.ts";
 * import { sealLog } from "./seal_log.ts";
 * const store = await openEventStore({ dataDir: "memory://" });
 * const seal = await sealLog(store);
 * console.log(`sealed ${seal.events} events; anchor ${seal.version}:${seal.hash}`);
 * await store.close();
 * ```
 *
 * @param store The store to seal.
 * @returns The seal; write `version` and `hash` down outside the database to anchor it.
 * @throws {Error} The store's error when the seal cannot be written.
 */
export function sealLog(store: Pick<SqlEventStore, "seal">): Promise<Seal> {
  return store.seal();
}
