/**
 * The transaction of `seal()`: record every stream's head as of a horizon.
 *
 * @module
 */

import type { AppendResult, StreamAppend } from "./event_store.ts";
import type { SqlTx } from "./sql_client.ts";
import { validateAppend, type ValidateAppendOptions } from "./_validate_append.ts";
import { appendInTx } from "./_append_in_tx.ts";
import {
  compareCodePoints,
  headsHash,
  type Seal,
  SEAL_EVENT_TYPE,
  SEAL_HEADS_EVENT_TYPE,
  SEAL_STREAM,
} from "./hash_chain.ts";

/**
 * Budget of the `heads` list of one seal event, in characters of JSON, so that a seal
 * after a burst of activity splits into events well under the 1 MiB event limit.
 */
const HEADS_PER_EVENT_CHARS = 256 * 1024;

/** Data of an `audit.sealed` event. */
interface SealData {
  horizon: string;
  previous_horizon: string;
  streams: number;
  events: number;
  heads_hash: string;
  changed_heads: number;
  heads: [string, number, string][];
}

/** Options of {@linkcode sealInTx}. */
export interface SealInTxOptions extends ValidateAppendOptions {
  /** Whether the seal's append sends a NOTIFY. */
  notify: boolean;
  /** Whether to lock the seal stream (false: the client is exclusive). */
  lock: boolean;
}

/**
 * Seals the log: under the lock of stream `audit-seals`, takes the horizon (the snapshot's
 * xmin: every transaction below it has ended, so the set of events below it can never
 * grow), reads the head of every stream below the horizon, and appends an `audit.sealed`
 * event with their heads hash and counts, plus the heads that changed since the previous
 * seal (split over `audit.heads_recorded` events before it when many changed).
 *
 * Cost: one scan of the events below the horizon (an aggregate per stream).
 *
 * @returns The seal and the append, or the previous seal unchanged (`result` undefined)
 *   when no stream but `audit-seals` changed since it.
 */
export async function sealInTx(
  tx: SqlTx,
  options: SealInTxOptions,
): Promise<{ seal: Seal; result?: AppendResult }> {
  if (options.lock) {
    await tx.query("select pg_advisory_xact_lock(hashtextextended($1, 0))", [SEAL_STREAM]);
  }
  const [last] = await tx.query<
    { version: number; global_position: number; data: SealData; hash: string }
  >(
    `select stream_version as version, global_position, data, encode(hash, 'hex') as hash
     from events where stream_id = $1 and type = $2 order by stream_version desc limit 1`,
    [SEAL_STREAM, SEAL_EVENT_TYPE],
  );
  const previousHorizon = last?.data.horizon ?? "0";
  const [{ horizon }] = await tx.query<{ horizon: string }>(
    "select pg_snapshot_xmin(pg_current_snapshot())::text as horizon",
  );
  const heads = await tx.query<
    { stream_id: string; version: number; events: number; hash: string; changed: boolean }
  >(
    `select h.stream_id, h.version, h.events, encode(e.hash, 'hex') as hash,
       e.transaction_id >= $2::xid8 as changed
     from (
       select stream_id, max(stream_version) as version, count(*) as events
       from events where transaction_id < $1::xid8 group by stream_id
     ) as h
     join events e on e.stream_id = h.stream_id and e.stream_version = h.version`,
    [horizon, previousHorizon],
  );
  const changed = heads.filter((head) => head.changed)
    .sort((a, b) => compareCodePoints(a.stream_id, b.stream_id));
  if (last && changed.every((head) => head.stream_id === SEAL_STREAM)) {
    return { seal: toSeal(last.data, last, false) };
  }

  const chunks: [string, number, string][][] = [[]];
  let size = 0;
  for (const head of changed) {
    const entry: [string, number, string] = [head.stream_id, head.version, head.hash];
    const entrySize = head.stream_id.length + 90;
    if (size + entrySize > HEADS_PER_EVENT_CHARS && chunks.at(-1)!.length > 0) {
      chunks.push([]);
      size = 0;
    }
    chunks.at(-1)!.push(entry);
    size += entrySize;
  }
  const data: SealData = {
    horizon,
    previous_horizon: previousHorizon,
    streams: heads.length,
    events: heads.reduce((sum, head) => sum + head.events, 0),
    heads_hash: headsHash(
      heads.map((h) => ({ streamId: h.stream_id, version: h.version, hash: h.hash })),
    ),
    changed_heads: changed.length,
    heads: chunks.at(-1)!,
  };
  const writes: StreamAppend[] = [{
    streamId: SEAL_STREAM,
    expectedVersion: "any",
    events: [
      ...chunks.slice(0, -1).map((chunk) => ({
        type: SEAL_HEADS_EVENT_TYPE,
        data: { horizon, heads: chunk },
      })),
      { type: SEAL_EVENT_TYPE, data: { ...data } },
    ],
  }];
  const { result } = await appendInTx(tx, writes, validateAppend(writes, options), options);
  const sealed = result.events.at(-1)!;
  const [{ hash }] = await tx.query<{ hash: string }>(
    "select encode(hash, 'hex') as hash from events where global_position = $1::int8",
    [sealed.globalPosition],
  );
  const seal = toSeal(data, {
    version: sealed.streamVersion,
    global_position: sealed.globalPosition,
    hash,
  }, true);
  return { seal, result };
}

function toSeal(
  data: SealData,
  event: { version: number; global_position: number; hash: string },
  written: boolean,
): Seal {
  return {
    version: event.version,
    globalPosition: event.global_position,
    hash: event.hash,
    horizon: data.horizon,
    streams: data.streams,
    events: data.events,
    headsHash: data.heads_hash,
    changedHeads: data.changed_heads,
    written,
  };
}
