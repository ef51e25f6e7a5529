/**
 * Rebuilds, from stream `audit-seals`, the stream heads that the latest seal covers.
 *
 * @module
 */

import {
  ARCHIVE_EVENT_TYPE,
  type ChainedEvent,
  headsHash,
  SEAL_EVENT_TYPE,
  SEAL_HEADS_EVENT_TYPE,
  SEAL_STREAM,
  type StreamHead,
} from "../events/mod.ts";
import type { AuditSource } from "./audit_source.ts";
import type { VerifyProblem } from "./verify_problem.ts";

/** The latest seal as the log holds it. */
export interface FoldedSeal {
  /** Version of the `audit.sealed` event in `audit-seals`. */
  version: number;
  /** Its stored chain hash. */
  hash: string | null;
  /** Events with a `transaction_id` below it are covered (xid8). */
  horizon: bigint;
  /** Numbers of streams and events it records. */
  streams: number;
  events: number;
  /** Its recorded heads hash. */
  headsHash: string;
  /**
   * Every head the live log must still have: the heads recorded by all seals up to the
   * latest, latest wins, without the streams archived since (`audit.archived`).
   */
  heads: Map<string, StreamHead>;
}

/** Streams moved to the archive, as the `audit.archived` events of the log record them. */
export interface FoldedArchive {
  /** The head (last archived event) of every archived stream: the archive must end there. */
  heads: Map<string, StreamHead>;
  /** Where the events went, as recorded (`schema.events`). */
  tables: Set<string>;
}

/**
 * Reads every seal event in version order and folds the heads they record. A seal lists
 * only the heads that changed since the previous one, so the heads covered by seal N are
 * those recorded by seals 1…N (the latest entry of each stream wins).
 *
 * @returns The latest seal (undefined when the log was never sealed) and the problems
 *   found in the seals themselves: a seal whose heads do not hash to its `heads_hash`, or
 *   whose counts differ from them, or whose data is not in the documented shape.
 */
export async function foldSeals(
  source: AuditSource,
  options: { pageSize: number; signal?: AbortSignal },
): Promise<{ seal?: FoldedSeal; archived: FoldedArchive; problems: VerifyProblem[] }> {
  const heads = new Map<string, StreamHead>();
  const problems: VerifyProblem[] = [];
  const archived: FoldedArchive = { heads: new Map(), tables: new Set() };
  /** Heads archived after the latest seal: that seal's heads hash still covers them. */
  let archivedSinceSeal: StreamHead[] = [];
  let pending: StreamHead[] = [];
  let latest: { event: ChainedEvent; data: Record<string, unknown> } | undefined;
  let after: ChainedEvent | undefined;
  for (;;) {
    const page = await source.readChain({
      streamId: SEAL_STREAM,
      after,
      limit: options.pageSize,
      signal: options.signal,
    });
    if (page.length === 0) break;
    after = page.at(-1);
    for (const event of page) {
      if (event.type === ARCHIVE_EVENT_TYPE) {
        const removed = foldArchive(event, heads, archived);
        if (typeof removed === "string") problems.push(sealProblem(event, removed));
        else archivedSinceSeal.push(...removed);
        continue;
      }
      if (event.type !== SEAL_EVENT_TYPE && event.type !== SEAL_HEADS_EVENT_TYPE) continue;
      const recorded = readHeads(event);
      if (typeof recorded === "string") {
        problems.push(sealProblem(event, recorded));
        continue;
      }
      pending.push(...recorded);
      if (event.type === SEAL_EVENT_TYPE) {
        for (const head of pending) heads.set(head.streamId, head);
        pending = [];
        archivedSinceSeal = [];
        latest = { event, data: event.data };
      }
    }
  }
  if (!latest) return { archived, problems };

  const { event, data } = latest;
  const seal: FoldedSeal = {
    version: event.streamVersion,
    hash: event.hash,
    horizon: 0n,
    streams: Number(data.streams),
    events: Number(data.events),
    headsHash: String(data.heads_hash),
    heads,
  };
  try {
    seal.horizon = BigInt(String(data.horizon));
  } catch {
    problems.push(sealProblem(event, `its horizon ${JSON.stringify(data.horizon)} is no xid8`));
  }
  const covered = new Map(heads);
  for (const head of archivedSinceSeal) covered.set(head.streamId, head);
  const events = [...covered.values()].reduce((sum, head) => sum + head.version, 0);
  const folded = headsHash(covered.values());
  if (folded !== seal.headsHash) {
    problems.push(sealProblem(
      event,
      `the heads recorded by seals 1…${event.streamVersion} hash to ${folded}, ` +
        `but the seal records heads_hash ${seal.headsHash}`,
    ));
  } else if (covered.size !== seal.streams || events !== seal.events) {
    problems.push(sealProblem(
      event,
      `the seal records ${seal.streams} streams and ${seal.events} events, but the heads ` +
        `it covers are ${heads.size} streams and ${events} events`,
    ));
  }
  return { seal, archived, problems };
}

/**
 * Applies an `audit.archived` event: its heads must be those the seals recorded (only
 * sealed, unchanged streams are archived) and hash to its `heads_hash`; they leave the
 * fold and join the archived heads.
 *
 * @returns The heads removed from the fold, or what is wrong with the event.
 */
function foldArchive(
  event: ChainedEvent,
  heads: Map<string, StreamHead>,
  archived: FoldedArchive,
): StreamHead[] | string {
  const recorded = readHeads(event);
  if (typeof recorded === "string") return recorded;
  if (headsHash(recorded) !== event.data.heads_hash) {
    return `its heads do not hash to its heads_hash ${JSON.stringify(event.data.heads_hash)}`;
  }
  for (const head of recorded) {
    const sealed = heads.get(head.streamId);
    if (!sealed || sealed.version !== head.version || sealed.hash !== head.hash) {
      return `it archived ${head.streamId} at version ${head.version} (hash ${head.hash}), ` +
        `but the seals before it recorded ${
          sealed ? `version ${sealed.version} (hash ${sealed.hash})` : "no head"
        } for that stream`;
    }
  }
  for (const head of recorded) {
    heads.delete(head.streamId);
    archived.heads.set(head.streamId, head);
  }
  archived.tables.add(String(event.data.archive));
  return recorded;
}

/** The heads an event of `audit-seals` records, or what is wrong with them. */
function readHeads(event: ChainedEvent): StreamHead[] | string {
  const list = event.data.heads;
  if (!Array.isArray(list)) return "its data has no heads array";
  const heads: StreamHead[] = [];
  for (const entry of list) {
    if (
      !Array.isArray(entry) || typeof entry[0] !== "string" ||
      !Number.isSafeInteger(entry[1]) || typeof entry[2] !== "string"
    ) {
      return `its heads hold ${JSON.stringify(entry)}, not [stream_id, version, hash]`;
    }
    heads.push({ streamId: entry[0], version: entry[1], hash: entry[2] });
  }
  return heads;
}

function sealProblem(event: ChainedEvent, why: string): VerifyProblem {
  return {
    streamId: SEAL_STREAM,
    version: event.streamVersion,
    kind: "altered",
    message: `Seal event ${SEAL_STREAM} version ${event.streamVersion} (${event.type}) ` +
      `is inconsistent: ${why}`,
  };
}
