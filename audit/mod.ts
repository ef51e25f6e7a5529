/**
 * Audit of the event log: tamper evidence that an auditor can check.
 *
 * Every event stores a SHA-256 hash chained to the previous event of its stream (computed
 * by the store, `events/hash_chain.ts`); seals (`sealLog`, `store.seal()`) record every
 * stream's head. {@linkcode verifyLog} recomputes all of it and names the first event that
 * was altered, removed or reordered, and the streams whose sealed tail is gone.
 * `deno task verify` runs it from the command line.
 *
 * @example Serve it (GET /api/v1/audit/verify)
 * ```ts
 * import { openEventStore } from "../events/mod.ts";
 * import { verifyLog } from "./mod.ts";
 * const store = await openEventStore({ dataDir: "memory://" });
 * const result = await verifyLog(store, { signal: AbortSignal.timeout(60_000) });
 * const status = result.ok ? 200 : 409;
 * console.log(status, JSON.stringify(result));
 * await store.close();
 * ```
 *
 * @module
 */

export type { AuditSource } from "./audit_source.ts";
export type { ProblemKind, VerifyProblem } from "./verify_problem.ts";
export {
  verifyLog,
  type VerifyLogOptions,
  type VerifyLogResult,
  type VerifyProgress,
} from "./verify_log.ts";
export { sealLog } from "./seal_log.ts";
export { verifyArchive, type VerifyArchiveOptions } from "./verify_archive.ts";
