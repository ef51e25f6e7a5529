/**
 * Rebuilds, from stream `audit-seals`, the stream heads that the latest seal covers.
 *
 * @module
 */

import {
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
  /** Every head it covers: the heads recorded by all seals up to it, latest wins. */
  heads: Map<string, StreamHead>;
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
): Promise<{ seal?: FoldedSeal; problems: VerifyProblem[] }> {
  const heads = new Map<string, StreamHead>();
  const problems: VerifyProblem[] = [];
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
        latest = { event, data: event.data };
      }
    }
  }
  if (!latest) return { problems };

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
  const events = [...heads.values()].reduce((sum, head) => sum + head.version, 0);
  const folded = headsHash(heads.values());
  if (folded !== seal.headsHash) {
    problems.push(sealProblem(
      event,
      `the heads recorded by seals 1…${event.streamVersion} hash to ${folded}, ` +
        `but the seal records heads_hash ${seal.headsHash}`,
    ));
  } else if (heads.size !== seal.streams || events !== seal.events) {
    problems.push(sealProblem(
      event,
      `the seal records ${seal.streams} streams and ${seal.events} events, but the heads ` +
        `it covers are ${heads.size} streams and ${events} events`,
    ));
  }
  return { seal, problems };
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
