/**
 * Input checks of `append()`, run before any SQL so that a bad event never fails (or
 * partly fails) a transaction.
 *
 * @module
 */

import type { JsonObject, StreamAppend } from "./event_store.ts";
import { canonicalJson } from "./canonical_json.ts";

/** Event types: dotted lower case, at least two segments (`job.queued`). */
export const EVENT_TYPE_PATTERN: RegExp = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/** Default limit of one event's `data` plus `metadata`, as UTF-8 JSON: 1 MiB. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One event ready to insert. */
export interface EventRow {
  streamId: string;
  type: string;
  data: JsonObject;
  metadata: JsonObject;
  /** Lower case UUID. */
  eventId: string;
  /** Whether the caller chose the id (only those take part in idempotency). */
  explicitId: boolean;
  /** RFC 8785 canonical JSON of `data`: what is stored and hashed. */
  dataJson: string;
  /** RFC 8785 canonical JSON of `metadata`. */
  metadataJson: string;
}

/** Options of {@linkcode validateAppend}. */
export interface ValidateAppendOptions {
  /** Id of events given without one. */
  newId: () => string;
  /** Limit of `data` plus `metadata` per event, in UTF-8 bytes of JSON. */
  maxEventBytes: number;
}

/**
 * Validates the writes of an append and flattens them into rows, in the given order.
 *
 * @throws {TypeError} Naming the offending field (`writes[0].events[1].data.msg`) and the
 *   value seen: empty writes or events, a stream listed twice, a bad stream id, expected
 *   version, type or event id, an event id used twice, data or metadata that is not a
 *   plain JSON object, or a string with `\u0000` or a lone surrogate (jsonb rejects those
 *   with error 22P05), or data and metadata whose JSON together exceeds `maxEventBytes`.
 */
export function validateAppend(
  writes: StreamAppend[],
  { newId, maxEventBytes }: ValidateAppendOptions,
): EventRow[] {
  if (!Array.isArray(writes) || writes.length === 0) {
    throw new TypeError("writes must be a non-empty array of stream appends");
  }
  const rows: EventRow[] = [];
  const streams = new Set<string>();
  const ids = new Set<string>();
  writes.forEach((write, w) => {
    const at = `writes[${w}]`;
    const { streamId, expectedVersion, events } = write ?? {};
    if (typeof streamId !== "string" || streamId.length === 0) {
      throw new TypeError(`${at}.streamId must be a non-empty string, got ${show(streamId)}`);
    }
    checkString(streamId, `${at}.streamId`);
    if (streams.has(streamId)) {
      throw new TypeError(`${at}.streamId ${show(streamId)} appears twice in one append`);
    }
    streams.add(streamId);
    if (
      expectedVersion !== "any" && !(Number.isSafeInteger(expectedVersion) && expectedVersion >= 0)
    ) {
      throw new TypeError(
        `${at}.expectedVersion must be "any" or an integer >= 0, got ${show(expectedVersion)}`,
      );
    }
    if (!Array.isArray(events) || events.length === 0) {
      throw new TypeError(`${at}.events must be a non-empty array, got ${show(events)}`);
    }
    events.forEach((event, e) => {
      const field = `${at}.events[${e}]`;
      if (!isPlainObject(event)) throw new TypeError(`${field} must be an object`);
      if (typeof event.type !== "string" || !EVENT_TYPE_PATTERN.test(event.type)) {
        throw new TypeError(
          `${field}.type must be dotted lower case like "job.queued", got ${show(event.type)}`,
        );
      }
      checkJsonObject(event.data, `${field}.data`);
      const metadata = event.metadata ?? {};
      checkJsonObject(metadata, `${field}.metadata`);
      let eventId = newId();
      if (event.eventId !== undefined) {
        if (typeof event.eventId !== "string" || !UUID_PATTERN.test(event.eventId)) {
          throw new TypeError(`${field}.eventId must be a UUID, got ${show(event.eventId)}`);
        }
        eventId = event.eventId.toLowerCase();
      }
      if (ids.has(eventId)) {
        throw new TypeError(`${field}.eventId ${eventId} appears twice in one append`);
      }
      ids.add(eventId);
      const dataJson = canonicalJson(event.data);
      const metadataJson = canonicalJson(metadata);
      checkSize(dataJson, metadataJson, field, maxEventBytes);
      rows.push({
        streamId,
        type: event.type,
        data: event.data,
        metadata,
        eventId,
        explicitId: event.eventId !== undefined,
        dataJson,
        metadataJson,
      });
    });
  });
  return rows;
}

/**
 * Refuses an event whose data and metadata serialise to more than `max` UTF-8 bytes, naming
 * the larger of the two fields and every size.
 */
function checkSize(dataJson: string, metadataJson: string, field: string, max: number): void {
  // A UTF-16 code unit takes at most 3 UTF-8 bytes: most events need no exact count.
  if ((dataJson.length + metadataJson.length) * 3 <= max) return;
  const data = utf8Length(dataJson);
  const metadata = utf8Length(metadataJson);
  if (data + metadata <= max) return;
  const larger = data >= metadata ? "data" : "metadata";
  throw new TypeError(
    `${field}.${larger} is too large: data and metadata serialise to ${data + metadata} ` +
      `bytes of JSON (data ${data}, metadata ${metadata}), over the limit of ${max} bytes`,
  );
}

/** Length of a well-formed string in UTF-8 bytes. */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdfff) bytes += 1; // a pair: 2 units, 4 bytes
    else bytes += 2;
  }
  return bytes;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkJsonObject(value: unknown, path: string): void {
  if (!isPlainObject(value)) {
    throw new TypeError(`${path} must be a plain JSON object, got ${show(value)}`);
  }
  checkJson(value, path, new Set());
}

/**
 * Deepest nesting of arrays and objects accepted in an event's data or metadata (the
 * top-level object is level 1). Deeply nested jsonb exhausts the embedded PGlite's WASM
 * stack (seen at about 1,500 levels, which broke the store until restart), so the limit
 * is checked before any write, on both stores alike.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Walks a value that is about to become jsonb. Accepted: null, booleans, finite numbers,
 * well-formed strings without `\u0000`, arrays and plain objects of those. An object
 * property set to `undefined` is dropped, as `JSON.stringify` does; anything else that
 * would not read back equal (Date, Map, class instances, NaN, bigint, functions, cycles)
 * is rejected.
 */
function checkJson(value: unknown, path: string, parents: Set<object>): void {
  if (parents.size >= MAX_JSON_DEPTH && typeof value === "object" && value !== null) {
    throw new TypeError(
      `${path} nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels, the store's limit`,
    );
  }
  switch (typeof value) {
    case "string":
      return checkString(value, path);
    case "boolean":
      return;
    case "number":
      if (Number.isFinite(value)) return;
      throw new TypeError(`${path} must be a finite number, got ${value}`);
    case "object": {
      if (value === null) return;
      if (parents.has(value)) throw new TypeError(`${path} is a circular reference`);
      parents.add(value);
      if (Array.isArray(value)) {
        value.forEach((item, i) => {
          if (item === undefined) throw new TypeError(`${path}[${i}] is undefined`);
          checkJson(item, `${path}[${i}]`, parents);
        });
      } else if (isPlainObject(value)) {
        for (const [key, item] of Object.entries(value)) {
          const itemPath = `${path}.${key}`;
          checkString(key, `${itemPath} (key)`);
          if (item !== undefined) checkJson(item, itemPath, parents);
        }
      } else {
        throw new TypeError(`${path} must be JSON, got an instance of ${value.constructor?.name}`);
      }
      parents.delete(value);
      return;
    }
    default:
      throw new TypeError(`${path} must be JSON, got a ${typeof value}`);
  }
}

function checkString(value: string, path: string): void {
  if (value.includes("\u0000")) {
    throw new TypeError(`${path} contains \\u0000, which Postgres text and jsonb reject`);
  }
  if (!value.isWellFormed()) {
    throw new TypeError(`${path} contains a lone UTF-16 surrogate, which jsonb rejects`);
  }
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null || typeof value !== "object") return String(value);
  return `an instance of ${value.constructor?.name ?? "Object"}`;
}
