/**
 * The hash chain of the log and the seals over its stream heads: the rules an auditor
 * re-implements to check that history was not edited (README, "Verifying the log").
 *
 * Event hash: `SHA-256(previous || UTF-8(JCS([stream_id, stream_version, event_id, type,
 * data, metadata])))`, where `previous` is the 32-byte hash of the event before it in the
 * same stream, or 32 zero bytes for version 1, and JCS is RFC 8785 canonical JSON.
 *
 * Heads hash of a seal: `SHA-256(UTF-8(JCS([[stream_id, version, hash_hex], …])))` over
 * every stream's head, sorted by stream id in Unicode code point order.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { canonicalJson } from "./canonical_json.ts";
import type { RecordedEvent } from "./event_store.ts";

/** Hash that precedes version 1 of every stream: 32 zero bytes, as lower case hex. */
export const GENESIS_HASH: string = "0".repeat(64);

/** The stream seals are appended to. */
export const SEAL_STREAM = "audit-seals";

/** Type of the event that closes a seal; it carries the heads hash and the counts. */
export const SEAL_EVENT_TYPE = "audit.sealed";

/**
 * Type of the events that carry the rest of a seal's changed heads when they do not fit in
 * the `audit.sealed` event; they come right before it, in the same append.
 */
export const SEAL_HEADS_EVENT_TYPE = "audit.heads_recorded";

/** What an event's hash covers besides its predecessor's hash. */
export interface HashedContent {
  /** The event's stream. */
  streamId: string;
  /** 1-based version within the stream. */
  streamVersion: number;
  /** Lower case UUID. */
  eventId: string;
  /** Dotted event type. */
  type: string;
  /** Payload, as read back from the `data` column. */
  data: Record<string, unknown>;
  /** Metadata, as read back from the `metadata` column. */
  metadata: Record<string, unknown>;
}

/**
 * The canonical content of an event: RFC 8785 JSON of
 * `[stream_id, stream_version, event_id, type, data, metadata]`.
 *
 * @param content The event's fields.
 * @param json Already canonical JSON of `data` and `metadata`, to skip serialising twice.
 * @returns The canonical text; its UTF-8 bytes are what the hash covers.
 * @throws {TypeError} When data or metadata is not canonicalisable JSON.
 */
export function canonicalEventContent(
  content: HashedContent,
  json?: { data: string; metadata: string },
): string {
  const data = json?.data ?? canonicalJson(content.data);
  const metadata = json?.metadata ?? canonicalJson(content.metadata);
  return `[${JSON.stringify(content.streamId)},${canonicalJson(content.streamVersion)},` +
    `${JSON.stringify(content.eventId)},${JSON.stringify(content.type)},${data},${metadata}]`;
}

/**
 * Computes an event's chain hash.
 *
 * @example
 * ```ts
 * import { eventHash, GENESIS_HASH } from "./hash_chain.ts";
 * const first = eventHash(GENESIS_HASH, {
 *   streamId: "job-1",
 *   streamVersion: 1,
 *   eventId: "00000000-0000-4000-8000-000000000001",
 *   type: "job.queued",
 *   data: { priority: 1 },
 *   metadata: {},
 * });
 * ```
 *
 * @param previous Hash of the previous event of the stream (lower case hex), or
 *   {@linkcode GENESIS_HASH} for version 1.
 * @param content The event's fields, as read back from the log.
 * @param json Already canonical JSON of `data` and `metadata`, to skip serialising twice.
 * @returns SHA-256 as 64 lower case hex digits.
 * @throws {TypeError} When `previous` is not 64 hex digits or the content is not JSON.
 */
export function eventHash(
  previous: string,
  content: HashedContent,
  json?: { data: string; metadata: string },
): string {
  if (!/^[0-9a-f]{64}$/.test(previous)) {
    throw new TypeError(`previous must be 64 lower case hex digits, got ${previous}`);
  }
  return createHash("sha256")
    .update(previous, "hex")
    .update(canonicalEventContent(content, json), "utf8")
    .digest("hex");
}

/** A stream's last event as a seal records it. */
export interface StreamHead {
  /** The stream. */
  streamId: string;
  /** Version of its last event (the number of its events). */
  version: number;
  /** Chain hash of that event, lower case hex. */
  hash: string;
}

/**
 * Compares strings by Unicode code point (the order of their UTF-8 bytes, and of
 * PostgreSQL's `COLLATE "C"` in a UTF-8 database), unlike `<`, which compares UTF-16 code
 * units and puts U+10000 and above before U+E000–U+FFFF.
 *
 * @returns A negative number, 0 or a positive number.
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–U+DFFF) encode code points above U+FFFF: lift them above the BMP.
    const fx = x >= 0xd800 && x <= 0xdfff ? x + 0x10000 : x;
    const fy = y >= 0xd800 && y <= 0xdfff ? y + 0x10000 : y;
    return fx - fy;
  }
  return a.length - b.length;
}

/**
 * Hashes a set of stream heads the way a seal records them: SHA-256 over the UTF-8 of the
 * canonical JSON array `[[stream_id, version, hash], …]`, sorted by stream id in code point
 * order.
 *
 * @param heads One head per stream, in any order.
 * @returns SHA-256 as 64 lower case hex digits.
 */
export function headsHash(heads: Iterable<StreamHead>): string {
  const sorted = [...heads].sort((a, b) => compareCodePoints(a.streamId, b.streamId));
  const hasher = new HeadsHasher();
  for (const head of sorted) hasher.add(head.streamId, head.version, head.hash);
  return hasher.digest();
}

/**
 * One head as the heads hash covers it: the canonical JSON of `[stream_id, version, hash]`.
 *
 * @param streamId The stream.
 * @param version Version of its last event.
 * @param hash That event's chain hash, lower case hex.
 * @returns The text, e.g. `["job-1",3,"ab…"]`.
 */
export function headEntry(streamId: string, version: number, hash: string): string {
  return `[${JSON.stringify(streamId)},${version},${JSON.stringify(hash)}]`;
}

/**
 * {@linkcode headsHash} over heads given one at a time, already sorted: the same bytes,
 * without holding every head (the seal feeds it while merging sorted lists).
 *
 * @example Usage
 * ```ts
 * import { headsHash, HeadsHasher } from "./hash_chain.ts";
 * const hasher = new HeadsHasher();
 * hasher.add("job-1", 3, "ab".repeat(32));
 * hasher.add("job-2", 1, "cd".repeat(32));
 * hasher.digest(); // === headsHash([...the same heads])
 * ```
 */
export class HeadsHasher {
  #hash = createHash("sha256").update("[", "utf8");
  /** Text not yet hashed: one `update` per 64 KiB instead of one per head. */
  #pending = "";
  #last: string | undefined;
  /** Number of heads added. */
  count = 0;

  /**
   * Adds the next head.
   *
   * @param streamId Its stream; not before the previous head's in code point order.
   * @param version Version of its last event.
   * @param hash That event's chain hash, lower case hex.
   * @throws {RangeError} When `streamId` sorts before the previous head's.
   */
  add(streamId: string, version: number, hash: string): void {
    if (this.#last !== undefined && compareCodePoints(this.#last, streamId) > 0) {
      throw new RangeError(
        `heads must come in code point order of stream id, got ${JSON.stringify(streamId)} after ${
          JSON.stringify(this.#last)
        }`,
      );
    }
    this.#last = streamId;
    this.addEntry(headEntry(streamId, version, hash));
  }

  /**
   * Adds the next head as {@linkcode headEntry} wrote it (a seal keeps them so written),
   * trusting the caller for the order.
   *
   * @param entry `[stream_id, version, hash]` as canonical JSON.
   */
  addEntry(entry: string): void {
    this.#pending += this.count++ > 0 ? "," + entry : entry;
    if (this.#pending.length >= 65536) {
      this.#hash.update(this.#pending, "utf8");
      this.#pending = "";
    }
  }

  /**
   * Ends the list.
   *
   * @returns SHA-256 as 64 lower case hex digits; the hasher cannot be used after.
   */
  digest(): string {
    return this.#hash.update(this.#pending + "]", "utf8").digest("hex");
  }
}

/** An event with what the audit reads besides its fields. */
export interface ChainedEvent extends RecordedEvent {
  /** The stored chain hash, lower case hex (null only on a row missing its hash). */
  hash: string | null;
  /** The appending transaction's id (`xid8`), as a decimal string. */
  transactionId: string;
}

/** Options of `readChain()`. */
export interface ReadChainOptions {
  /** Start after this event in `(stream_id, stream_version)` order. @default the start */
  after?: { streamId: string; streamVersion: number };
  /** Only this stream. */
  streamId?: string;
  /** Maximum number of events. @default 1000 */
  limit?: number;
  /** Rejects with the signal's reason when aborted before or after the query. */
  signal?: AbortSignal;
}

/**
 * A seal: the heads of every stream as of a horizon, recorded by an `audit.sealed` event
 * in stream {@linkcode SEAL_STREAM}.
 */
export interface Seal {
  /** Version of the `audit.sealed` event in {@linkcode SEAL_STREAM}. */
  version: number;
  /** Global position of that event. */
  globalPosition: number;
  /**
   * Chain hash of that event: write it down outside the database to anchor the log (an
   * attacker who can rewrite every row can also rewrite every hash, but not your note).
   */
  hash: string;
  /**
   * The seal covers every event whose `transaction_id` is below this `xid8` (decimal):
   * all those transactions had ended when the seal was taken.
   */
  horizon: string;
  /** Number of streams covered. */
  streams: number;
  /** Number of events covered. */
  events: number;
  /** {@linkcode headsHash} of the covered heads. */
  headsHash: string;
  /** How many heads changed since the previous seal (recorded in this seal). */
  changedHeads: number;
  /** Whether this call wrote the seal (false: nothing had changed since the last one). */
  written: boolean;
}
