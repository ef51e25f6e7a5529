/**
 * Checks an archive of the log (see `archiveStreams` in `events/`) against what the live
 * log recorded when the streams left it.
 *
 * @module
 */

import type { AuditSource } from "./audit_source.ts";
import { foldSeals } from "./_fold_seals.ts";
import { verifyLog, type VerifyLogOptions, type VerifyLogResult } from "./verify_log.ts";

/** Options of {@linkcode verifyArchive}. */
export type VerifyArchiveOptions = Omit<VerifyLogOptions, "anchor" | "expectHeads">;

/**
 * Verifies the archive: every archived stream's hash chain from version 1 (holes, edits,
 * order, as `verifyLog` checks the live log), and that every stream the live log's
 * `audit.archived` events name is in the archive, ending at the recorded head with the
 * recorded hash (else `tail_removed`, or `altered`). Those events are hash-chained in the
 * live `audit-seals` stream and covered by later seals, so the boundary hashes cannot be
 * changed without `verifyLog(live)` noticing.
 *
 * @example
 * ```ts
 * import { openEventStore } from "../events/mod.ts";
 * import { verifyArchive } from "./verify_archive.ts";
 * const url = "postgres://postgres@127.0.0.1/test";
 * const live = await openEventStore({ databaseUrl: url, dataDir: "unused" });
 * const archive = await openEventStore({
 *   databaseUrl: url, dataDir: "unused", schema: "public_archive", migrate: false,
 * });
 * console.log((await verifyArchive(live, archive)).ok);
 * await archive.close();
 * await live.close();
 * ```
 *
 * @param live The live log (reads only its `audit-seals` stream).
 * @param archive The archive table, read like a log (an event store on the archive schema).
 * @param options Page size, progress, signal, problem limit.
 * @returns The archive's counts and problems; `ok` is false when there is any.
 * @throws {RangeError} When `pageSize` or `maxProblems` is not an integer >= 1.
 * @throws {Error} The store's error when either cannot be read.
 */
export async function verifyArchive(
  live: AuditSource,
  archive: AuditSource,
  options: VerifyArchiveOptions = {},
): Promise<VerifyLogResult> {
  const { archived } = await foldSeals(live, {
    pageSize: options.pageSize ?? 1000,
    signal: options.signal,
  });
  return await verifyLog(archive, {
    ...options,
    expectHeads: {
      heads: archived.heads.values(),
      by: "the audit.archived events of the live log",
    },
  });
}
