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
  advanceSealedHeads,
  type CoveredSummary,
  fullScanHeads,
  type HeadRow,
  rebuildSealedHeads,
  summarise,
  windowHeads,
} from "./_sealed_heads.ts";
import {
  compareCodePoints,
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

/** Seal events per append statement (64 × 256 KiB of heads = 16 MiB of parameters). */
const EVENTS_PER_APPEND = 64;

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
  /**
   * Compute the covered heads by one aggregate over every event below the horizon, as
   * before the cache, and leave `sealed_heads` as it is (the next seal then finds it one
   * seal behind and rebuilds it). For comparisons and benchmarks. @default false
   */
  fullScan?: boolean;
}

/**
 * Seals the log: under the lock of stream `audit-seals`, takes the horizon (the snapshot's
 * xmin: every transaction below it has ended, so the set of events below it can never
 * grow), reads the heads that changed since the previous seal (the events of the window
 * `previous_horizon <= transaction_id < horizon`), and appends an `audit.sealed` event with
 * the heads hash and counts of every stream below the horizon, plus those changed heads
 * (split over `audit.heads_recorded` events before it when many changed).
 *
 * The heads of the streams that did not change come from table `sealed_heads`, the heads of
 * the previous seal, updated here in the same transaction (`_sealed_heads.ts`): it is
 * checked against the previous seal's `heads_hash` and counts first, and rebuilt from one
 * aggregate over every event below the horizon when it does not match. The data written are
 * the same either way.
 *
 * Cost: the window's events (an index range scan) plus one row per stream of the cache,
 * read once and hashed; not the events below the previous horizon. The first seal of a log
 * (and a rebuild) aggregates every event below the horizon.
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
  let changed: readonly HeadRow[];
  let covered: CoveredSummary;
  if (options.fullScan) {
    const scanned = await fullScanHeads(tx, horizon, previousHorizon);
    changed = scanned.filter((h) => h.changed)
      .map((h): HeadRow => [h.stream_id, Number(h.version), h.hash, Number(h.events)])
      .sort((a, b) => compareCodePoints(a[0], b[0]));
    covered = summarise(scanned);
  } else if (!last) {
    // The first seal: every head changed since "0"; one aggregate fills the cache.
    ({ heads: changed, summary: covered } = await rebuildSealedHeads(tx, horizon));
  } else {
    changed = await windowHeads(tx, previousHorizon, horizon);
  }
  if (last && changed.every(([streamId]) => streamId === SEAL_STREAM)) {
    return { seal: toSeal(last.data, last, false) };
  }
  covered ??= await advanceSealedHeads(tx, { last: last!, horizon, changed });

  const chunks: [string, number, string][][] = [[]];
  let size = 0;
  for (const [streamId, version, hash] of changed) {
    const entry: [string, number, string] = [streamId, version, hash];
    const entrySize = streamId.length + 90;
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
    streams: covered.streams,
    events: covered.events,
    heads_hash: covered.headsHash,
    changed_heads: changed.length,
    heads: chunks.at(-1)!,
  };
  const events = [
    ...chunks.slice(0, -1).map((chunk) => ({
      type: SEAL_HEADS_EVENT_TYPE,
      data: { horizon, heads: chunk },
    })),
    { type: SEAL_EVENT_TYPE, data: { ...data } },
  ];
  // Appended in parts of at most EVENTS_PER_APPEND events (each up to 256 KiB of heads), in
  // this transaction and under the seal's lock: a first seal of a log with millions of
  // streams records every head, more than one statement's parameters can carry (a string
  // of over 512 MiB is more than V8 can build).
  const result: AppendResult = { versions: {}, events: [] };
  for (let i = 0; i < events.length; i += EVENTS_PER_APPEND) {
    const writes: StreamAppend[] = [{
      streamId: SEAL_STREAM,
      expectedVersion: "any",
      events: events.slice(i, i + EVENTS_PER_APPEND),
    }];
    const part = await appendInTx(tx, writes, validateAppend(writes, options), {
      ...options,
      notify: options.notify && i + EVENTS_PER_APPEND >= events.length,
    });
    result.events.push(...part.result.events);
    Object.assign(result.versions, part.result.versions);
  }
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
